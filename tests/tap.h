/* tests/tap.h — a few lines of TAP (Test Anything Protocol) for meson's tap protocol.
 * Every check prints "ok N - ..." or "not ok N - ..."; tap_done() prints the plan and returns
 * the exit status, non-zero when any check failed. */
#ifndef NB_TAP_H
#define NB_TAP_H

/* Returns cond. */
int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tap_done(void);

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)

#endif
