/* The page's elements by id: a missing one is a mistake in the page, said at load time
 * rather than as a null later. */

export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}
