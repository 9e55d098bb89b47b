/* apps/nabla.c — `nabla <command>`: the demos and tools, one program. */
#include <stdio.h>
#include <string.h>

#include "apps/app.h"

static const app_cmd commands[] = {
    {"train", "train a model (checkpoints, metrics.csv, loss curves)", cmd_train},
    {"reconstruct", "test images above their reconstructions", cmd_reconstruct},
    {"sample", "a grid of samples from the prior (class by class for a CVAE)", cmd_sample},
    {"interpolate", "decode along the line between the codes of two test images", cmd_interpolate},
    {"manifold", "the learned 2-D latent manifold (Kingma & Welling, fig. 4)", cmd_manifold},
    {"scatter", "test-set codes coloured by label", cmd_scatter},
    {"evaluate", "test-set metrics and the importance-sampled log-likelihood", cmd_evaluate},
    {"traverse", "latent traversals: one row per latent dimension, the others fixed (β-VAE)", cmd_traverse},
    {"denoise", "clean / corrupted / denoised rows for each corruption, and the 2-D toy", cmd_denoise},
    {"compare", "the whole course side by side: PCA and AEs, generating, denoising, VAEs, decoders, CVAE, β-VAE",
     cmd_compare},
    {"demo", "train a VAE (and a 2-D one) and write pictures and a report", cmd_demo},
};
enum { NCMD = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
    fprintf(f, "usage: nabla <command> [options]   (nabla <command> --help for its options)\n\ncommands:\n");
    for (int i = 0; i < NCMD; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    /* results and progress share stdout; line by line, so that they stay in order with the
     * messages on stderr when both go to one file or pipe */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        usage(stderr);
        return APP_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return APP_OK;
    }
    for (int i = 0; i < NCMD; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            const int rc = commands[i].run(argc - 2, argv + 2);
            if (nb_profile_enabled()) nb_profile_print(stderr); /* NB_PROFILE=1: where the time went */
            return rc;
        }
    fprintf(stderr, "nabla: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return APP_USAGE;
}
