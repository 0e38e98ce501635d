/* ctl: `aisle ctl`, the operator's and developer's client of running
 * servers: readable tables by default, --json for scripts (one object per
 * answer; a Shop stream is one object per chunk), and exit codes scripts
 * can test:
 *
 *   0  done            2  bad usage         4  not found (no such user or item)
 *   1  the call failed 3  unavailable (server or its Redis down, deadline passed)
 *
 * recommend, profile and shop speak gRPC to serve's Recommender service
 * (services/app/rpc.h); index status and catalog get|search read serve's
 * admin endpoints on its HTTP address (services/app/admin.h), which the API
 * does not carry; track produces a signal to aisle.signals, as apps do; index
 * reload goes over the control topic to every replica. */
#ifndef AISLE_CTL_H
#define AISLE_CTL_H

enum { CTL_EXIT_FAILED = 1, CTL_EXIT_UNAVAILABLE = 3, CTL_EXIT_NOT_FOUND = 4 };

/* ctl's flags, checked without running (for `aisle config check`).
 * Returns 0, or the exit status after printing the error. */
int ctl_check_flags(int argc, char **argv);

int ctl_main(int argc, char **argv);

#endif
