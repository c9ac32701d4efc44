/**
 * A typed event emitter whose listener errors cannot break the caller (a throwing test listener must
 * not stop a device from answering). Errors go to `onListenerError`.
 */
export type Listener<T> = (event: T) => void;

export class SafeEmitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  constructor(private readonly onListenerError: (err: unknown) => void) {}

  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener as Listener<never>);
    return () => this.off(name, listener);
  }

  once<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(name, (event) => {
      off();
      listener(event);
    });
    return off;
  }

  off<K extends keyof Events>(name: K, listener: Listener<Events[K]>): void {
    this.listeners.get(name)?.delete(listener as Listener<never>);
  }

  /** True when someone listens, so callers can skip building costly events. */
  has(name: keyof Events): boolean {
    return (this.listeners.get(name)?.size ?? 0) > 0;
  }

  emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const set = this.listeners.get(name);
    if (!set || set.size === 0) return;
    for (const l of [...set]) {
      try {
        (l as Listener<Events[K]>)(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  removeAll(): void {
    this.listeners.clear();
  }
}
