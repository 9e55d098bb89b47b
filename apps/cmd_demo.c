/* apps/cmd_demo.c — `nabla demo`, the main demo: trains a VAE (on Fashion-MNIST unless --data
 * says otherwise), then a 2-D one,
 * and writes reconstructions, samples, an interpolation, the latent manifold and scatter, loss
 * curves and a report that indexes them. It is the other commands run in sequence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/app.h"
#include "tensor/error.h"

enum { MAX_ARGS = 96 };

/* Trains with the demo's own configuration flags plus extra ones (later flags win). */
static int train(int argc, char **argv, const char *const *extra)
{
    char *args[MAX_ARGS];
    int n = 0;
    for (int i = 0; i < argc && n < MAX_ARGS - 16; i++)
        if (strncmp(argv[i], "--out", 5) || (argv[i][5] && argv[i][5] != '=')) args[n++] = argv[i];
        else i += !argv[i][5]; /* the demo's --out is not the run's */
    for (int i = 0; extra[i] && n < MAX_ARGS - 1; i++) args[n++] = (char *)extra[i];
    args[n] = NULL;
    return app_train(n, args, 0);
}

/* A picture command on the run in dir: only the data and the seed carry over. */
static int picture(int (*cmd)(int, char **), const char *dir, const nb_train_cfg *cfg)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg->seed);
    const char *args[] = {"--out", dir, "--data", cfg->data, "--seed", seed, NULL};
    return cmd(6, (char **)args);
}

/* The last row of a run's metrics.csv, for the report. */
static int last_metrics(const char *dir, double *v)
{
    char path[600], line[1024], last[1024] = "";
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) memcpy(last, line, sizeof line);
    fclose(f);
    return sscanf(last, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2],
                  &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13], &v[14]) == 15;
}

static void report(const char *out, const char *vae, const char *vae2, const char *data)
{
    char path[600];
    snprintf(path, sizeof path, "%s/report.md", out);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "nabla demo: %s: cannot write\n", path);
        return;
    }
    char dname[96];
    fprintf(f, "# nabla demo: variational autoencoders on %s\n\n", app_data_name(data, dname, sizeof dname));
    fprintf(f, "Losses are in nats per image (summed over pixels and latent dimensions, averaged over "
               "images), as pytorch/examples reports them.\n\n");
    fprintf(f, "| model | epochs | test -ELBO | reconstruction | KL | bits/dim | active units | images/s |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|\n");
    const char *dirs[2] = {vae, vae2}, *names[2] = {"VAE, latent 20", "VAE, latent 2"};
    for (int i = 0; i < 2; i++) {
        double v[15];
        if (last_metrics(dirs[i], v))
            fprintf(f, "| %s | %.0f | %.2f | %.2f | %.2f | %.4f | %.0f | %.0f |\n", names[i], v[0], v[7], v[8],
                    v[9], v[11], v[12], v[14]);
    }
    fprintf(f, "\n## Latent 20\n\nLoss curves (train and test, per epoch):\n\n![loss curves](vae/loss_curve.png)\n\n");
    fprintf(f, "Test images (odd rows) above their reconstructions (even rows):\n\n![reconstructions](vae/reconstruction.png)\n\n");
    fprintf(f, "Samples from the prior, z ~ N(0, I):\n\n![samples](vae/samples.png)\n\n");
    fprintf(f, "Decoding along the line between the codes of two test images:\n\n![interpolation](vae/interpolation.png)\n\n");
    fprintf(f, "## Latent 2\n\nThe learned manifold, z on a grid through the inverse normal CDF "
               "(Kingma & Welling, figure 4):\n\n![manifold](vae2d/manifold.png)\n\n");
    fprintf(f, "Test codes coloured by class:\n\n![scatter](vae2d/scatter.png)\n\n");
    fprintf(f, "Every picture has its CSV beside it; `metrics.csv` holds the per-epoch numbers and "
               "`config.json` the full configuration of each run.\n");
    fclose(f);
    printf("wrote %s\n", path);
}

int cmd_demo(int argc, char **argv)
{
    nb_train_cfg cfg;
    app_flag flags[] = {{.name = "out", .help = "where the report, its pictures and the two runs go", .def = "out/demo"}};
    int rc = app_parse(argc, argv, "demo", "Trains a VAE (latent 20) and a VAE with a 2-D latent space (on "
                       "Fashion-MNIST, or --data) and writes their pictures and report.md into --out. Configuration "
                       "keys (e.g. --epochs, --threads, --data, --train-size) apply to both runs.", flags, 1, &cfg, NULL);
    if (rc) return rc < 0 ? APP_OK : rc;
    const char *out = app_flag_str(flags, 1, "out");
    char vae[600], vae2[600], ck[640], ck2[640];
    snprintf(vae, sizeof vae, "%s/vae", out);
    snprintf(vae2, sizeof vae2, "%s/vae2d", out);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", vae);
    snprintf(ck2, sizeof ck2, "%s/checkpoint.safetensors", vae2);
    printf("== 1/2: a VAE with a 20-dimensional latent space ==\n");
    if ((rc = train(argc, argv, (const char *[]){"--out", vae, NULL})) || (rc = picture(cmd_reconstruct, vae, &cfg)) ||
        (rc = picture(cmd_sample, vae, &cfg)) || (rc = picture(cmd_interpolate, vae, &cfg)))
        return rc;
    printf("== 2/2: a VAE with a 2-dimensional latent space ==\n");
    if ((rc = train(argc, argv, (const char *[]){"--out", vae2, "--latent", "2", NULL})) ||
        (rc = picture(cmd_manifold, vae2, &cfg)) || (rc = picture(cmd_scatter, vae2, &cfg)))
        return rc;
    report(out, vae, vae2, cfg.data);
    return APP_OK;
}
