/* report: the `aisle report` command: experiment results from exposures
 * and signals, read from Kafka or from length-delimited files. */
#ifndef AISLE_APP_REPORT_H
#define AISLE_APP_REPORT_H

/* argv[0] is "report". Returns the process exit status (0; 1 when the
 * input cannot be read; 2 for bad flags). */
int report_main(int argc, char **argv);

#endif
