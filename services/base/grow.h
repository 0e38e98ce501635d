/* grow: room for one more element in an array that doubles.
 *
 * Tables of unknown final size (catalog facts, pools, spans, report rows)
 * grow by appends; this is the one place that doubles them, checks the
 * size for overflow and leaves the array as it was when memory runs out. */
#ifndef AISLE_GROW_H
#define AISLE_GROW_H

#include <stddef.h>

/* With n of *cap elements of size bytes in use at *p: AISLE_OK when there
 * is room for element n, after reallocating *p to twice *cap (first when
 * *cap is 0) if there was not; AISLE_ENOMEM, with *p and *cap unchanged
 * (still the caller's), when memory runs out or the size overflows. p is
 * the address of the caller's typed pointer (see GROW_ROOM). */
int grow_room(void *p, size_t *cap, size_t n, size_t size, size_t first);

/* grow_room for an array arr of cap elements, n in use. */
#define GROW_ROOM(arr, n, cap, first) grow_room(&(arr), &(cap), (n), sizeof(*(arr)), (first))

#endif
