/* hotfile: a settings file the server reads again when it changes (the
 * scorer's weights, the merchandising rules), without a restart.
 *
 * The file is named once (hotfile_set, from a flag or the configuration)
 * or, when it was not, by an environment variable looked up on each check.
 * Calls take the parsed contents with a reference (hotfile_take); at most
 * once every HOTFILE_CHECK_MS a take looks at the file's time and size and,
 * when they changed, parses it again. A file that is refused is logged
 * with the loader's reason (FILE:LINE) and the contents in use stay; a
 * reload never pulls contents from under a call that holds them. */
#ifndef AISLE_HOTFILE_H
#define AISLE_HOTFILE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define HOTFILE_CHECK_MS 1000

/* Parses path into *out (freed with the hotfile's free_data). Returns
 * AISLE_OK or a negative AISLE_* code with err set. */
typedef int (*hotfile_load_fn)(const char *path, void **out, char *err, size_t errlen);

typedef struct hotfile_ref hotfile_ref;

typedef struct hotfile {
    const char *what; /* "scorer", "rules": for the log */
    const char *env;  /* the variable naming the file when hotfile_set did not; may be NULL */
    hotfile_load_fn load;
    void (*free_data)(void *data);
    pthread_mutex_t mu; /* guards what follows and every reference count */
    char *path;         /* owned; NULL: the variable's */
    hotfile_ref *cur;   /* NULL: nothing loaded */
    int64_t checked_ms;
    struct timespec mtime;
    off_t size;
} hotfile;

#define HOTFILE_INIT(what, env, load, free_data) \
    {(what), (env), (load), (free_data), PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, {0, 0}, 0}

/* Names the file (NULL or "": back to the variable) and loads it now.
 * Returns AISLE_OK, AISLE_ENOMEM, or the loader's code with err set; the
 * contents in use then stay and the file is tried again when it changes. */
int hotfile_set(hotfile *h, const char *path, char *err, size_t errlen);

/* The contents in use with a reference for the caller, or NULL when there
 * are none; drop it with hotfile_drop. */
hotfile_ref *hotfile_take(hotfile *h, int64_t now_ms);
/* What r holds (NULL for a NULL r). */
const void *hotfile_data(const hotfile_ref *r);
void hotfile_drop(hotfile *h, hotfile_ref *r);

#endif
