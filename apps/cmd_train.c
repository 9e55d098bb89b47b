/* apps/cmd_train.c — `nabla train`: trains any model, writes checkpoints, metrics.csv and the
 * loss curves drawn from that CSV after every epoch. Under mpirun the ranks train one model
 * data-parallel (nabla/dist.h); rank 0 alone prints and writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apps/app.h"
#include "tensor/error.h"
#include "apps/plot.h"

enum { MAX_EPOCHS = 4096 };

/* What an AE's loss is: the squared error, or the BCE of a Bernoulli decoder. */
static const char *ae_unit(const nb_model_cfg *m)
{
    return m->decoder == NB_DEC_BERNOULLI ? "BCE, nats per image" : "squared error per image";
}

/* Reads metrics.csv back (so a resumed run draws its whole history) and draws the panels: for a
 * VAE -ELBO, reconstruction and KL per epoch, train and test; for an AE its one loss. */
static nb_status draw_curves(const char *out, const nb_train_cfg *cfg)
{
    char csv[600], png[600];
    snprintf(csv, sizeof csv, "%s/metrics.csv", out);
    snprintf(png, sizeof png, "%s/loss_curve.png", out);
    FILE *f = fopen(csv, "r");
    if (!f) return nb_error(NB_ERR_IO, "%s: cannot read", csv);
    static double ep[MAX_EPOCHS], col[6][MAX_EPOCHS]; /* train loss/recon/kl, test loss/recon/kl */
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < MAX_EPOCHS) {
        double v[15];
        if (sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7], &v[8], &v[9]) != 10)
            continue; /* the header */
        ep[n] = v[0];
        for (int k = 0; k < 6; k++) col[k][n] = v[4 + k];
        n++;
    }
    fclose(f);
    const plot_series s[6] = {
        {"train", ep, col[0], n, 0}, {"test", ep, col[3], n, 1},
        {"train", ep, col[1], n, 0}, {"test", ep, col[4], n, 1},
        {"train", ep, col[2], n, 0}, {"test", ep, col[5], n, 1},
    };
    char title[160], name[96];
    if (cfg->model.kind < NB_VAE) {
        snprintf(title, sizeof title, "%s: loss per epoch", app_model_name(cfg, name, sizeof name));
        const char *t1[1] = {title}, *y1[1] = {ae_unit(&cfg->model)};
        return plot_panels(png, 1, t1, "epoch", y1, (const int[]){2}, s + 2);
    }
    const char *titles[3] = {"-ELBO", "reconstruction", "KL"};
    const char *ylabels[3] = {"nats per image", "nats per image", "nats per image"};
    return plot_panels(png, 3, titles, "epoch", ylabels, (const int[]){2, 2, 2}, s);
}

typedef struct train_ctx {
    const nb_train_cfg *cfg;
    int vae, tty;
} train_ctx;

/* A progress bar on a terminal; elsewhere a line per quarter epoch. On stdout with the epoch
 * lines, so that they come in order wherever both go; the step lines start with "  step". */
static void on_step(const nb_step_log *l, void *p)
{
    const train_ctx *c = p;
    if (c->cfg->progress == 0) return;
    const int width = 24, fill = (int)(width * l->batch / (l->batches ? l->batches : 1));
    if (c->tty) {
        printf("\r  epoch %d/%d [%.*s%*s] %lld/%lld  loss %8.2f  %6.0f img/s  ETA %2d:%02d ", l->epoch, l->epochs,
               fill, "########################", width - fill, "", (long long)l->batch, (long long)l->batches,
               l->mean_loss, l->images_per_s, (int)l->eta_s / 60, (int)l->eta_s % 60);
        if (l->batch == l->batches) printf("\r%*s\r", 100, "");
        fflush(stdout);
    } else if (l->batch % ((l->batches + 3) / 4) == 0 || l->batch == l->batches) {
        printf("  step %lld: epoch %d/%d, %lld/%lld batches, loss %.2f so far, %.0f img/s\n", (long long)l->step,
               l->epoch, l->epochs, (long long)l->batch, (long long)l->batches, l->mean_loss, l->images_per_s);
    }
}

static void on_epoch(const nb_epoch_log *l, void *p)
{
    const train_ctx *c = p;
    printf("epoch %3d/%d  train %.2f", l->epoch, c->cfg->epochs, l->train_loss);
    const nb_model_kind kind = c->cfg->model.kind;
    if (kind == NB_VQVAE) { /* its bound: recon + L·log K; the codebook's health */
        printf(" (recon %.2f + L log K %.2f)  test %.2f (recon %.2f) bound, nats per image, %.4f bits/dim, "
               "perplexity %.1f, %d dead codes (test perplexity %.1f)", l->train_recon, l->train_kl, l->test.elbo_loss,
               l->test.recon, l->test.bits_per_dim, l->perplexity, l->dead_codes, l->test.perplexity);
        printf("  %.1f s, %.0f img/s\n", l->seconds, l->images_per_s);
        if (draw_curves(c->cfg->out, c->cfg)) fprintf(stderr, "nabla train: loss curve: %s\n", nb_last_error());
        return;
    }
    if (c->vae) printf(" (recon %.2f + KL %.2f)", l->train_recon, l->train_kl);
    printf("  test %.2f", l->test.elbo_loss);
    if (kind == NB_HVAE)
        printf(" (recon %.2f + KL %.2f = z1 %.2f + z2 %.2f) -ELBO, nats per image, %.4f bits/dim, %d/%d and %d/%d "
               "active, beta %.3g", l->test.recon, l->test.kl, l->test.kl1, l->test.kl2, l->test.bits_per_dim,
               l->test.active1, l->test.latent, l->test.active2, l->test.latent2, l->beta);
    else if (c->vae)
        printf(" (recon %.2f + KL %.2f) -ELBO, nats per image, %.4f bits/dim, %d/%d active, beta %.3g", l->test.recon,
               l->test.kl, l->test.bits_per_dim, l->test.active_units, l->test.latent, l->beta);
    else
        printf(" %s", ae_unit(&c->cfg->model));
    const nb_objective obj = c->cfg->objective;
    if (obj == NB_OBJ_IWAE) printf(", -IWAE-%d %.2f", l->test.samples, l->test.bound);
    if (obj == NB_OBJ_TCVAE) printf(", MI %.2f TC %.2f dwKL %.2f", l->test.mi, l->test.tc, l->test.dwkl);
    if (obj == NB_OBJ_WAE || obj == NB_OBJ_INFOVAE) printf(", MMD %.4f", l->test.mmd);
    if (l->valid.n) printf("  valid %.2f%s", l->valid.bound, l->best ? " (best)" : "");
    printf("  %.1f s, %.0f img/s\n", l->seconds, l->images_per_s);
    /* the library counts the active units; whether that is a collapse is the app's to say */
    if (c->vae && l->test.active_units < c->cfg->collapse * l->test.latent)
        printf("  collapse: %d of %d dims active (below %g of them; try --kl-warmup, --kl-cycle or --free-bits)\n",
               l->test.active_units, l->test.latent, c->cfg->collapse);
    if (draw_curves(c->cfg->out, c->cfg)) fprintf(stderr, "nabla train: loss curve: %s\n", nb_last_error());
}

static void describe(const nb_trainer *t, const nb_dist *d)
{
    const nb_train_cfg *c = nb_trainer_cfg(t);
    const nb_model_cfg *m = &c->model;
    static const char *kinds[] = {"AE", "denoising AE", "VAE", "conditional VAE", "VQ-VAE", "VAE with a VampPrior",
                                  "VAE with two stochastic layers"};
    static const char *decs[] = {"Bernoulli", "Gaussian (fixed sigma)", "Gaussian (learned shared variance)",
                                 "Gaussian (learned per-pixel variance)", "Gaussian (log-variance head)"};
    char dname[96], lat[96];
    if (m->kind == NB_VQVAE)
        snprintf(lat, sizeof lat, "%d codes of %d values at %d positions", m->codebook, m->code_dim,
                 nb_trainer_model(t)->positions);
    else if (m->kind == NB_HVAE)
        snprintf(lat, sizeof lat, "z1 %d, z2 %d", m->hvae_z1, m->hvae_z2);
    else
        snprintf(lat, sizeof lat, "latent %d", m->latent);
    printf("training a %s (%s%s, %s, %s decoder%s) on %lld images of %dx%dx%d from %s (%s)\n", kinds[m->kind],
           m->arch == NB_ARCH_MLP ? "MLP" : "conv", m->arch == NB_ARCH_MLP && !m->nhidden ? " without hidden layers" : "",
           lat, decs[m->decoder], m->output == NB_OUT_IDENTITY && m->decoder ? ", identity output" : "",
           (long long)nb_trainer_data(t, 0)->n, m->channels, m->height, m->width, c->data,
           app_data_name(c->data, dname, sizeof dname));
    if (c->objective != NB_OBJ_ELBO) {
        printf("objective %s", nb_objective_name(c->objective));
        if (c->objective == NB_OBJ_IWAE) printf(", K = %d samples per image", c->samples);
        if (c->objective == NB_OBJ_TCVAE) printf(", alpha 1, beta %g, gamma 1 (N = %lld)", c->tc_beta,
                                                 (long long)nb_trainer_data(t, 0)->n);
        if (c->objective == NB_OBJ_WAE || c->objective == NB_OBJ_INFOVAE) printf(", lambda %g", c->mmd_lambda);
        printf("\n");
    }
    if (c->valid > 0) printf("validating on the last %lld training images; best.safetensors keeps the best\n", (long long)c->valid);
    printf("%d epochs, batch %lld, %s lr %g, seed %llu, %d threads; writing to %s/\n", c->epochs,
           (long long)c->batch, (const char *[]){"SGD", "Adam", "AdamW", "Adagrad"}[c->optim.kind], c->optim.lr,
           (unsigned long long)c->seed, nb_get_threads(), c->out);
    if (nb_dist_size(d) > 1)
        printf("data-parallel on %d ranks (%d on this node), %d threads each: about %lld examples of every batch "
               "per rank\n", nb_dist_size(d), nb_dist_local_size(d), nb_get_threads(),
               (long long)((c->batch + nb_dist_size(d) - 1) / nb_dist_size(d)));
}

/* The run's end under MPI, on rank 0: the time the ranks spent summing gradients. */
static void report_allreduce(const nb_dist *d)
{
    int64_t calls;
    const double s = nb_dist_allreduce_seconds(d, &calls);
    if (calls) printf("all-reduce of the gradients: %lld calls, %.3f ms each\n", (long long)calls, 1e3 * s / (double)calls);
}

int app_train(int argc, char **argv, int record)
{
    app_flag flags[] = {{.name = "resume", .help = "continue the run saved in this checkpoint"}};
    nb_train_cfg cfg;
    int rc = app_parse(argc, argv, "train", "Trains a model; writes config.json, metrics.csv, "
                       "loss_curve.png and checkpoint.safetensors (after every epoch) into --out, the run's "
                       "directory, and remembers it as the last run: the picture commands read it when given "
                       "no --out.", flags, 1, &cfg, NULL);
    if (rc) return rc < 0 ? APP_OK : rc;
    nb_dist *d; /* NULL unless started by mpirun */
    if (nb_dist_init_env(&d)) return app_fail("train", NULL);
    /* every rank fails together (the library agrees on each outcome); rank 0 says why */
    const int lead = nb_dist_rank(d) == 0;
    nb_trainer *t = nb_trainer_new_dist(&cfg, app_flag_str(flags, 1, "resume"), d);
    nb_status st = t ? NB_OK : NB_ERR_ARG;
    if (t) {
        if (lead) describe(t, d);
        const nb_train_cfg *c = nb_trainer_cfg(t);
        train_ctx ctx = {c, nb_model_is_vae(nb_trainer_model(t)), c->progress < 0 ? isatty(1) : c->progress};
        st = nb_trainer_run(t, &(nb_train_hooks){on_step, on_epoch, &ctx});
        if (!st && lead) report_allreduce(d);
        if (!st && lead && record) app_last_run_save(cfg.out);
        nb_trainer_free(t);
    }
    if (st && lead) app_fail("train", NULL);
    nb_dist_free(d);
    return st ? APP_FAIL : APP_OK;
}

int cmd_train(int argc, char **argv) { return app_train(argc, argv, 1); }
