/* expctl: the `aisle exp` command: experiment definitions and run-time
 * toggles in the store every serve replica watches, from a shell. */
#ifndef AISLE_APP_EXPCTL_H
#define AISLE_APP_EXPCTL_H

/* argv[0] is "exp". Returns the exit status: 0; 1 when the store refused
 * or could not be reached; 2 for bad flags. */
int expctl_main(int argc, char **argv);

#endif
