/* lathe_empty.c - gives every static library at least one object file while a layer is still
 * being filled in; holds nothing. */
typedef int lathe_empty_translation_unit;
