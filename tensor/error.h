/* tensor/error.h — internal: how calls outside a tape report failure. */
#ifndef NB_ERROR_H
#define NB_ERROR_H

#include "nabla/tensor.h"

/* Sets the thread's nb_last_error() message; returns st, so that `return nb_error(...)` reads
 * as the failure it is. An argument may be nb_last_error() itself (a wrapped message). */
nb_status nb_error(nb_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
