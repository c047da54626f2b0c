/**
 * A Map that also keeps its entries grouped by the class each belongs to, so that one class's
 * entries are found without going through every other class's: a pass that plans a few classes
 * reads those, whatever the size of the rest. An entry's class must not change while it is in the
 * map (set it again instead): it is filed under the class it has when set.
 */
export class ClassIndexedMap<V> extends Map<string, V> {
  readonly #classOf: (value: V) => string | undefined;
  readonly #byClass = new Map<string, Map<string, V>>();

  constructor(classOf: (value: V) => string | undefined) {
    super();
    this.#classOf = classOf;
  }

  override set(key: string, value: V): this {
    this.#unfile(key);
    super.set(key, value);
    const className = this.#classOf(value);
    if (className !== undefined) {
      let group = this.#byClass.get(className);
      if (!group) {
        group = new Map();
        this.#byClass.set(className, group);
      }
      group.set(key, value);
    }
    return this;
  }

  override delete(key: string): boolean {
    this.#unfile(key);
    return super.delete(key);
  }

  override clear(): void {
    this.#byClass.clear();
    super.clear();
  }

  /** The entries of one class (empty when it has none). */
  inClass(className: string): IterableIterator<V> {
    return (this.#byClass.get(className) ?? new Map<string, V>()).values();
  }

  /** The classes that have entries. */
  classNames(): IterableIterator<string> {
    return this.#byClass.keys();
  }

  #unfile(key: string): void {
    const current = super.get(key);
    const className = current === undefined ? undefined : this.#classOf(current);
    if (className === undefined) return;
    const group = this.#byClass.get(className);
    group?.delete(key);
    if (group?.size === 0) this.#byClass.delete(className);
  }
}
