/* Stand-alone `aisle-embed train|eval ...`: the same entry points the aisle
 * binary dispatches to, for the quality bench and for scripts that need the
 * offline job without the server. */
#include "embed/blascore.h"
#include "embed/cli.h"

int main(int argc, char **argv) {
    blascore_fix(argv);
    return embed_cli_main(argc - 1, argv + 1);
}
