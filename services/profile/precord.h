/* precord: the per-user profile record, one Redis string that the module
 * (redis_module.c) edits in place and the store (profile.c) parses on a
 * read. One definition for both, so the writer and the reader cannot
 * disagree; it links nothing (it runs inside redis-server too).
 *
 * Layout, every field little-endian and fixed-width (doubles as IEEE-754
 * binary64):
 *
 *   head   56 bytes: "AIPR", version (1), 3 zero bytes, u32 count (fields),
 *          u32 marks (fields of kind 'o'), u32 heap (bytes of names),
 *          u32 zero, f64 last_ms, f64 erased (-1: never), f64 lm (the
 *          landmark; NaN until the first event), f64 n (applied events)
 *   index  count entries of 16 bytes, sorted by (kind, name) and strictly
 *          ascending: u32 name offset into the heap, u16 name length, u8
 *          kind, u8 zero, f64 value
 *   heap   the names, heap bytes, in no particular order
 *
 * A field is what the hash layout held as "KIND:NAME" (profile.h): the
 * kinds i d c g b s p f, and 'o' for a per-origin offset mark, whose name
 * is "topic:partition". Finding a field is a binary search of the index
 * (about seven compares for a profile of a hundred fields) instead of a
 * listpack walk; an insert moves the index tail and the heap by one entry
 * and appends the name. Fields are removed only by a trim, which rebuilds
 * the whole record (precord_build) and is amortized.
 *
 * Every read is bounds-checked by precord_check, which a caller runs once
 * on bytes it did not write itself; the other functions assume a record
 * that passed it. precord_check_bounds is its cheaper half, for the
 * module's every write: what it passes is safe to read and edit (every
 * name inside the heap), only the order may be wrong, which can make a
 * lookup miss but never read out of bounds; precord_build, which needs the
 * order, is only given records that passed the whole check. */
#ifndef AISLE_PRECORD_H
#define AISLE_PRECORD_H

#include <stddef.h>

#define PRECORD_VERSION 1
#define PRECORD_HEAD 56
#define PRECORD_ENTRY 16
#define PRECORD_MAX_NAME 65535 /* a name's length is a u16 */
/* The kinds of member fields (profile.h's KIND:NAME); 'o' is the other,
 * offset marks. */
#define PRECORD_MEMBER_KINDS "idcgbspf"

/* The verdicts AISLE.APPLY and the apply script give every event of a run
 * whose profile no write can read, one letter per check that failed (each
 * event's verdict is otherwise '1' applied, '0' a duplicate, '2' held
 * back): the run is refused whole and its keys are left as they were, so
 * the caller can dead-letter its events and the other runs of the call
 * still apply. Strings, so the script's text can name them too. */
#define PRECORD_REFUSED_RECORD "r" /* a record failing precord_check */
#define PRECORD_REFUSED_HASH "h"   /* a hash: a value not a number, a name too long */
#define PRECORD_REFUSED_TYPE "t"   /* a key of another Redis type */
#define PRECORD_REFUSED PRECORD_REFUSED_RECORD PRECORD_REFUSED_HASH PRECORD_REFUSED_TYPE

/* The head's numbers, by position. */
enum { PRECORD_LAST_MS, PRECORD_ERASED, PRECORD_LM, PRECORD_N, PRECORD_NMETA };

/* One field; name points into the record (or the caller's storage for
 * precord_build) and is not NUL-terminated. */
typedef struct precord_field {
    char kind;
    const char *name;
    size_t len;
    double v;
} precord_field;

/* Returns 0 when r[0..len) is a whole, well-formed record of this version,
 * else -1. */
int precord_check(const unsigned char *r, size_t len);
/* The same without the order of the index and the count of marks (O(n)
 * without a compare): 0 when every read stays inside r[0..len). */
int precord_check_bounds(const unsigned char *r, size_t len);

/* Writes an empty record (PRECORD_HEAD bytes) into r: no fields, erased as
 * given, lm NaN, last_ms and n 0. */
void precord_init(unsigned char *r, double erased);

size_t precord_size(const unsigned char *r);  /* its whole length */
size_t precord_count(const unsigned char *r); /* fields */
size_t precord_marks(const unsigned char *r); /* fields of kind 'o' */
double precord_meta(const unsigned char *r, int which);
void precord_set_meta(unsigned char *r, int which, double v);

/* Field i (< count) into *f. */
void precord_field_at(const unsigned char *r, size_t i, precord_field *f);
void precord_set_value(unsigned char *r, size_t i, double v);

/* Orders two fields as the index does: by kind, then name bytes, shorter
 * first. */
int precord_cmp(const precord_field *a, const precord_field *b);

/* Looks (kind, name) up. Returns 1 with its index in *at, or 0 with the
 * index it would be inserted at. */
int precord_find(const unsigned char *r, char kind, const char *name, size_t len, size_t *at);

/* Inserts a field at index at (from precord_find, which said it is
 * absent). r must have room for precord_size(r) + PRECORD_ENTRY + len
 * bytes; len <= PRECORD_MAX_NAME. */
void precord_insert(unsigned char *r, size_t at, char kind, const char *name, size_t len,
                    double v);

/* The length of a record of fields f[0..n). */
size_t precord_build_size(const precord_field *f, size_t n);

/* Writes a record of the head numbers meta[PRECORD_NMETA] and the fields
 * f[0..n), which must be sorted by precord_cmp without duplicates and not
 * point into out, into out (precord_build_size bytes). */
void precord_build(unsigned char *out, const double *meta, const precord_field *f, size_t n);

#endif
