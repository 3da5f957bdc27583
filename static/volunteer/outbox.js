// Results waiting for the server's ack, kept in IndexedDB so they survive a lost
// connection, a reload or a closed tab. Acks make resending safe (PROTOCOL.md:
// an accepted result sent again is answered duplicate: true and changes nothing).
//
// Record: {task_id, frame (the exact result frame text), status, elapsed, label,
//          deadline (ISO string or null), stored_at (ms)}
// Without IndexedDB (some private modes) the records live in memory for this visit.

const DB_NAME = "sparecycles";
const DB_VERSION = 1;
const STORE = "results";

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(STORE, { keyPath: "task_id" });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error("the result store is blocked by another tab"));
  });
}

export class Outbox {
  constructor() {
    this.memory = new Map();
    this.persistent = false;
    this.db = (typeof indexedDB === "undefined" ? Promise.reject(new Error("no IndexedDB"))
      : openDatabase()).then((db) => {
      this.persistent = true;
      return db;
    }, () => null);
    // One operation at a time, in call order: a delete issued after a put must not
    // overtake it, or an acked result would come back from the dead on the next visit.
    this.chain = Promise.resolve();
  }

  run(operation) {
    const result = this.chain.then(operation);
    this.chain = result.catch(() => {});
    return result;
  }

  async transact(mode, body) {
    const db = await this.db;
    if (!db) return body(null);
    const tx = db.transaction(STORE, mode);
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
    });
    done.catch(() => {});   // reported through the await below
    const value = await body(tx.objectStore(STORE));
    await done;
    return value;
  }

  put(record) {
    this.memory.set(record.task_id, record);
    return this.run(() => this.transact("readwrite", (store) => store && promised(store.put(record))));
  }

  delete(taskId) {
    this.memory.delete(taskId);
    return this.run(() => this.transact("readwrite", (store) => store && promised(store.delete(taskId))));
  }

  /** Every stored record, oldest first. */
  all() {
    return this.run(() => this.transact("readonly", async (store) => {
      const records = store ? await promised(store.getAll()) : [...this.memory.values()];
      for (const record of records) this.memory.set(record.task_id, record);
      return records.sort((a, b) => (a.stored_at || 0) - (b.stored_at || 0));
    }));
  }
}
