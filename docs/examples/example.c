/* docs/examples/example.c — see example.h. */
#include <stdio.h>

#include "example.h"

int example_gradcheck(const nb_gradcheck_case *c)
{
    nb_gradcheck_result r;
    if (nb_gradcheck(c, &r)) {
        fprintf(stderr, "%s\n", r.error);
        return 1;
    }
    for (int i = 0; i < r.n; i++)
        printf("%s %s: d/d %s: max relative error %.2e over %lld values%s%s\n",
               r.report[i].ok ? "ok" : "FAIL", c->label, r.report[i].what, r.report[i].max_rel_err,
               (long long)r.report[i].checked, r.report[i].ok ? "" : ": ", r.report[i].reason);
    return !r.ok;
}

nb_model_cfg example_vae(int height, int width, int hidden, int latent)
{
    nb_model_cfg cfg = nb_model_defaults();
    cfg.channels = 1, cfg.height = height, cfg.width = width;
    cfg.nhidden = 1, cfg.hidden[0] = hidden, cfg.latent = latent;
    return cfg;
}

int example_train(const char *dir, int64_t n, int epochs, int64_t batch, double lr,
                  const nb_model *m, example_loss_fn loss, void *ctx)
{
    nb_dataset all, ds;
    if (nb_dataset_load(&all, dir, "train")) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    ds = nb_dataset_view(&all, 0, n < all.n ? n : all.n);
    nb_optim *opt = nb_optim_new(m->ps, nb_optim_defaults(NB_ADAM, lr));
    nb_tape *tp = nb_tape_new();
    nb_batcher bt;
    int rc = !opt || !tp || nb_batcher_init(&bt, &ds, batch, 1, 1);
    double first = 0, last = 0;
    for (int e = 0; e < epochs && !rc; e++) {
        nb_batcher_epoch(&bt, e);
        const int64_t *idx;
        double sum = 0;
        int64_t b, seen = 0, step = 0;
        while (!rc && (b = nb_batcher_next(&bt, &idx)) > 0) {
            nb_tape_reset(tp);
            nb_rng rng = nb_rng_seed(1000 * (uint64_t)e + (uint64_t)step++);
            nb_tensor *x, *y;
            if (nb_model_batch(tp, m, &ds, idx, b, NB_BIN_DYNAMIC, &rng, &x, &y)) {
                rc = 1;
                break;
            }
            nb_flush_denormal_begin(); /* the step without slow subnormal arithmetic (Intel) */
            nb_tensor *l = loss(tp, x, &rng, ctx);
            rc = nb_backward(tp, l) || nb_optim_step(opt);
            nb_flush_denormal_end();
            if (rc) break;
            sum += nb_get(l, 0) * (double)b, seen += b;
        }
        if (rc) break;
        last = sum / (double)seen;
        if (e == 0) first = last;
        printf("epoch %d: loss %.2f\n", e + 1, last);
    }
    if (rc) fprintf(stderr, "%s\n", nb_last_error());
    else if (!(last < first)) fprintf(stderr, "the loss did not fall: %.2f, then %.2f\n", first, last), rc = 1;
    if (opt && tp) nb_batcher_free(&bt);
    nb_tape_free(tp);
    nb_optim_free(opt);
    nb_dataset_free(&all);
    return rc;
}
