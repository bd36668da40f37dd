// MagicNet protocol v3 for the browser, over WebSocket. No dependencies, no build step.
//
//   import { MagicNetClient } from "./magicnet.js";
//   const client = new MagicNetClient();
//   client.onActive = () => client.send(64, ["alice"]);
//   client.on(66, ([text]) => console.log("reply:", text));
//   await client.connect("ws://127.0.0.1:5002/");
//
// Wire format (see PROTOCOL.md, "Transport mappings beyond TCP"): each *binary* WebSocket message
// carries one payload, which is one or more MessagePack values back to back, each a message
// `[type, params]`. No 2-byte length prefix. The client offers the subprotocol `magicnet.v3`.
//
// A text message from the server is refused: the mapping says to close with 1003, but browsers
// only let scripts send 1000 or 3000-4999, so the client closes with 4003 (and 4002 for
// undecodable payloads), the RFC code plus 3000.
//
// Note: browsers refuse to load ES modules from file:// pages unless started with
// --allow-file-access-from-files (Chromium); serve the directory over HTTP otherwise.

/* ------------------------------------------------------------------------------------------ */
/* MessagePack                                                                                 */
/* ------------------------------------------------------------------------------------------ */
//
// Mapping between JavaScript and MessagePack values:
//
//   encode                                          decode
//   null / undefined  -> nil                        nil          -> null
//   boolean           -> bool                       bool         -> boolean
//   integer Number    -> smallest int form          int <= 2^53  -> Number
//   BigInt            -> int64 / uint64             larger ints  -> BigInt (exact)
//   other Number      -> float64                    float32/64   -> Number
//   new F64(x)        -> float64 (even if x is whole)
//   string            -> str (UTF-8)                str          -> string
//   Uint8Array, ArrayBuffer, other views -> bin     bin          -> Uint8Array (a copy)
//   Array             -> array                      array        -> Array
//   Map, plain object -> map                        map          -> Map (keys may be numbers)
//
// Limits: a whole-valued Number (1.0) is indistinguishable from an integer in JavaScript and is
// sent as an int; wrap it in F64 when the peer expects a float. Integers beyond
// Number.MAX_SAFE_INTEGER must be BigInt to stay exact (a Number that large is sent as the exact
// integer its double represents). BigInt outside [-2^63, 2^64) and ext types are errors.

/** Forces a number to be encoded as a MessagePack float64 (e.g. 1.0, which JS sees as 1). */
export class F64 {
  /** @param {number} value */
  constructor(value) { this.value = value; }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** A growable byte buffer used by the encoder. */
class Writer {
  constructor() { this.bytes = new Uint8Array(64); this.view = new DataView(this.bytes.buffer); this.length = 0; }
  /** Makes room for n more bytes and returns the offset to write them at. */
  reserve(n) {
    if (this.length + n > this.bytes.length) {
      const bigger = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
      bigger.set(this.bytes.subarray(0, this.length));
      this.bytes = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // Each reserve() may replace this.bytes/this.view, so it is called before they are read.
  u8(v) { const at = this.reserve(1); this.bytes[at] = v; }
  u16(v) { this.put("setUint16", 2, v); }
  u32(v) { this.put("setUint32", 4, v); }
  /** Writes a number with a DataView setter, e.g. put("setFloat64", 8, x). */
  put(setter, size, v) { const at = this.reserve(size); this.view[setter](at, v); }
  raw(b) { const at = this.reserve(b.length); this.bytes.set(b, at); }
  result() { return this.bytes.slice(0, this.length); }
}

const U64_END = 1n << 64n;
const I64_MIN = -(1n << 63n);

/** @param {Writer} w @param {bigint} v */
function writeBigInt(w, v) {
  if (v >= 0n) {
    if (v <= BigInt(Number.MAX_SAFE_INTEGER)) return writeInt(w, Number(v));
    if (v >= U64_END) throw new RangeError(`integer ${v} does not fit in uint64`);
    w.u8(0xcf); w.put("setBigUint64", 8, v);
  } else {
    if (v >= BigInt(Number.MIN_SAFE_INTEGER)) return writeInt(w, Number(v));
    if (v < I64_MIN) throw new RangeError(`integer ${v} does not fit in int64`);
    w.u8(0xd3); w.put("setBigInt64", 8, v);
  }
}

/** Writes an integer-valued Number in the smallest form, as Python's msgpack does. */
function writeInt(w, n) {
  if (n >= 0) {
    if (n < 0x80) w.u8(n);
    else if (n < 0x100) { w.u8(0xcc); w.u8(n); }
    else if (n < 0x10000) { w.u8(0xcd); w.u16(n); }
    else if (n < 0x100000000) { w.u8(0xce); w.u32(n); }
    else if (n < 2 ** 64) { w.u8(0xcf); w.put("setBigUint64", 8, BigInt(n)); }
    else writeFloat(w, n);
  } else {
    if (n >= -32) w.u8(n & 0xff);
    else if (n >= -0x80) { w.u8(0xd0); w.put("setInt8", 1, n); }
    else if (n >= -0x8000) { w.u8(0xd1); w.put("setInt16", 2, n); }
    else if (n >= -0x80000000) { w.u8(0xd2); w.put("setInt32", 4, n); }
    else if (n >= -(2 ** 63)) { w.u8(0xd3); w.put("setBigInt64", 8, BigInt(n)); }
    else writeFloat(w, n);
  }
}

function writeFloat(w, n) { w.u8(0xcb); w.put("setFloat64", 8, n); }

/** Writes a length header: the fix form (if any) or the 8/16/32-bit form. */
function writeHeader(w, length, fixBase, fixMax, op8, op16, op32) {
  if (length <= fixMax && fixBase !== null) w.u8(fixBase | length);
  else if (length < 0x100 && op8 !== null) { w.u8(op8); w.u8(length); }
  else if (length < 0x10000) { w.u8(op16); w.u16(length); }
  else if (length < 0x100000000) { w.u8(op32); w.u32(length); }
  else throw new RangeError("value too long for MessagePack");
}

/** @param {Writer} w @param {*} value */
function writeValue(w, value) {
  switch (typeof value) {
    case "undefined": w.u8(0xc0); return;
    case "boolean": w.u8(value ? 0xc3 : 0xc2); return;
    case "number":
      if (Number.isInteger(value)) writeInt(w, value); else writeFloat(w, value);
      return;
    case "bigint": writeBigInt(w, value); return;
    case "string": {
      const bytes = utf8Encoder.encode(value);
      writeHeader(w, bytes.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      w.raw(bytes);
      return;
    }
    case "object": break;
    default: throw new TypeError(`cannot encode a ${typeof value} in MessagePack`);
  }
  if (value === null) { w.u8(0xc0); return; }
  if (value instanceof F64) { writeFloat(w, value.value); return; }
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    const bytes = value instanceof Uint8Array ? value
      : value instanceof ArrayBuffer ? new Uint8Array(value)
      : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    writeHeader(w, bytes.length, null, -1, 0xc4, 0xc5, 0xc6);
    w.raw(bytes);
    return;
  }
  if (Array.isArray(value)) {
    writeHeader(w, value.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const item of value) writeValue(w, item);
    return;
  }
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  writeHeader(w, entries.length, 0x80, 15, null, 0xde, 0xdf);
  for (const [k, v] of entries) { writeValue(w, k); writeValue(w, v); }
}

/**
 * Encodes one value as MessagePack.
 * @param {*} value
 * @returns {Uint8Array}
 */
export function encode(value) {
  const w = new Writer();
  writeValue(w, value);
  return w.result();
}

/** Reads MessagePack values from a byte array, keeping a cursor. */
class Reader {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }
  /** Advances by n bytes, returning the old position; throws if the data ends first. */
  take(n) {
    if (this.pos + n > this.bytes.length) throw new RangeError("truncated MessagePack value");
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u8() { return this.bytes[this.take(1)]; }
  u16() { return this.view.getUint16(this.take(2)); }
  u32() { return this.view.getUint32(this.take(4)); }
  bytesOf(n) { const at = this.take(n); return this.bytes.slice(at, at + n); }
  str(n) { const at = this.take(n); return utf8Decoder.decode(this.bytes.subarray(at, at + n)); }
  array(n) { const a = new Array(n); for (let i = 0; i < n; i++) a[i] = this.value(); return a; }
  map(n) {
    const m = new Map();
    for (let i = 0; i < n; i++) { const k = this.value(); m.set(k, this.value()); }
    return m;
  }
  /** A 64-bit integer as a Number when it is exactly representable, else as a BigInt. */
  big(v) { return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; }

  value() {
    const b = this.u8();
    if (b < 0x80) return b;
    if (b < 0x90) return this.map(b & 0x0f);
    if (b < 0xa0) return this.array(b & 0x0f);
    if (b < 0xc0) return this.str(b & 0x1f);
    if (b >= 0xe0) return b - 0x100;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bytesOf(this.u8());
      case 0xc5: return this.bytesOf(this.u16());
      case 0xc6: return this.bytesOf(this.u32());
      case 0xca: return this.view.getFloat32(this.take(4));
      case 0xcb: return this.view.getFloat64(this.take(8));
      case 0xcc: return this.u8();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: return this.big(this.view.getBigUint64(this.take(8)));
      case 0xd0: return this.view.getInt8(this.take(1));
      case 0xd1: return this.view.getInt16(this.take(2));
      case 0xd2: return this.view.getInt32(this.take(4));
      case 0xd3: return this.big(this.view.getBigInt64(this.take(8)));
      case 0xd9: return this.str(this.u8());
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      case 0xdc: return this.array(this.u16());
      case 0xdd: return this.array(this.u32());
      case 0xde: return this.map(this.u16());
      case 0xdf: return this.map(this.u32());
      default: throw new TypeError(`unsupported MessagePack type 0x${b.toString(16)} (ext or reserved)`);
    }
  }
}

/**
 * Decodes every MessagePack value in `bytes` (a MagicNet payload holds one or more, back to back).
 * Throws on truncated or unsupported data.
 * @param {Uint8Array|ArrayBuffer} bytes
 * @returns {Array<*>}
 */
export function decodeAll(bytes) {
  const r = new Reader(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  const values = [];
  while (r.pos < r.bytes.length) values.push(r.value());
  return values;
}

/**
 * Decodes a single MessagePack value that must fill `bytes` exactly.
 * @param {Uint8Array|ArrayBuffer} bytes
 */
export function decode(bytes) {
  const values = decodeAll(bytes);
  if (values.length !== 1) throw new RangeError(`expected one MessagePack value, found ${values.length}`);
  return values[0];
}

/* ------------------------------------------------------------------------------------------ */
/* MagicNet client                                                                             */
/* ------------------------------------------------------------------------------------------ */

/** Library message types (0-63 are reserved; applications use 64 and up). */
export const MessageType = Object.freeze({
  MOTD: 1, HELLO: 2, DISCONNECT: 3, SHUTDOWN: 4, SHARED_PARAMETER: 5,
});

/** The WebSocket subprotocol MagicNet clients offer. */
export const SUBPROTOCOL = "magicnet.v3";
/** Protocol version sent in HELLO. */
export const PROTOCOL_VERSION = 3;
/** The Python package's default network hash. */
export const DEFAULT_NETWORK_HASH = Uint8Array.of(0x12, 0x34, 0x56, 0x78);
/** Payload size cap, as on stream transports (2-byte length); batches are split to respect it. */
export const MAX_PAYLOAD = 65535;

/**
 * A MagicNet client over one WebSocket. Assign the `on...` callbacks before `connect`.
 *
 * Messages sent before the handshake completes are held and go out right after HELLO;
 * messages sent in the same JavaScript task are batched into one WebSocket message.
 */
export class MagicNetClient {
  /**
   * @param {{networkHash?: Uint8Array, maxPayload?: number}} [options]
   */
  constructor(options = {}) {
    this.networkHash = options.networkHash ?? DEFAULT_NETWORK_HASH;
    this.maxPayload = options.maxPayload ?? MAX_PAYLOAD;
    /** @type {WebSocket|null} */ this.ws = null;
    /** The subprotocol the server selected ("" if it selected none). */ this.protocol = null;
    /** The server's message of the day, once received. */ this.motd = null;
    /** True once HELLO has been sent (the client side of the handshake is done). */ this.active = false;
    /** Our repository number, from the server's `rp` shared parameter. */ this.repository = null;
    /** Every shared parameter the server set. @type {Map<string, *>} */ this.sharedParameters = new Map();
    /** The last DISCONNECT received: `{reason, detail}`. */ this.disconnect = null;
    /** @type {Map<number, Function>} */ this.handlers = new Map();
    /** Encoded messages waiting for the next flush. @type {Uint8Array[]} */ this.queue = [];
    this.flushScheduled = false;
    /** Resolves connect()'s promise. @private */ this.activated = () => {};

    /** @type {(motd: string) => void} */ this.onMotd = () => {};
    /** Called right after HELLO is sent. @type {() => void} */ this.onActive = () => {};
    /** @type {(name: string, value: *) => void} */ this.onSharedParameter = () => {};
    /** Called when the server sends DISCONNECT. @type {(reason: number, detail: string|null) => void} */
    this.onDisconnect = () => {};
    /** @type {() => void} */ this.onShutdown = () => {};
    /** @type {(code: number, reason: string, wasClean: boolean) => void} */ this.onClose = () => {};
    /** Protocol errors and handler exceptions. @type {(error: Error) => void} */
    this.onError = (error) => console.error("MagicNet:", error);
    /** Messages of a type without a handler. @type {(type: number, params: Array) => void} */
    this.onUnhandled = (type, params) => console.warn("MagicNet: unhandled message", type, params);
  }

  /**
   * Registers the handler for an application message type; it receives the parameters array.
   * @param {number} type
   * @param {(params: Array, type: number) => void} handler
   * @returns {this}
   */
  on(type, handler) {
    this.handlers.set(type, handler);
    return this;
  }

  /**
   * Opens the WebSocket and runs the handshake.
   * @param {string} url e.g. "ws://127.0.0.1:5002/"
   * @returns {Promise<void>} resolves once HELLO is sent; rejects if the socket closes before.
   */
  connect(url) {
    if (this.ws) throw new Error("already connected");
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, SUBPROTOCOL);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      this.activated = resolve;
      ws.onopen = () => { this.protocol = ws.protocol; };
      ws.onmessage = (event) => this.receive(event.data);
      ws.onerror = () => {}; // always followed by a close event, which carries the details
      ws.onclose = (event) => {
        this.ws = null;
        this.active = false;
        if (!this.motd) reject(new Error(`connection closed before the handshake (code ${event.code}${event.reason ? ": " + event.reason : ""})`));
        this.onClose(event.code, event.reason, event.wasClean);
      };
    });
  }

  /**
   * Sends a message. Application messages use types 64 and up.
   * @param {number} type
   * @param {Array} [params]
   */
  send(type, params = []) {
    if (!Array.isArray(params)) throw new TypeError("MagicNet message parameters must be an array");
    const bytes = encode([type, params]);
    if (bytes.length > this.maxPayload) {
      throw new RangeError(`message ${type} is ${bytes.length} bytes, more than one payload holds (${this.maxPayload})`);
    }
    this.queue.push(bytes);
    if (this.active) this.scheduleFlush();
  }

  /**
   * Closes the connection (WebSocket close code 1000 by default), after sending what is queued.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "") {
    if (!this.ws) return;
    if (this.active) this.flush();
    this.ws.close(code, reason);
  }

  /** @private */
  scheduleFlush() {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  /** Sends everything queued now, as few WebSocket messages as the payload cap allows. */
  flush() {
    this.flushScheduled = false;
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    let batch = [], size = 0;
    const sendBatch = () => {
      const payload = new Uint8Array(size);
      let at = 0;
      for (const b of batch) { payload.set(b, at); at += b.length; }
      this.ws.send(payload);
      batch = []; size = 0;
    };
    for (const bytes of this.queue) {
      if (size + bytes.length > this.maxPayload) sendBatch();
      batch.push(bytes); size += bytes.length;
    }
    if (batch.length) sendBatch();
    this.queue = [];
  }

  /**
   * @private Closes with a protocol error. Browsers only let scripts send close code 1000 or
   * 3000-4999, so the RFC 6455 code (1002 protocol error, 1003 unacceptable data) is sent as
   * that code + 3000 (4002, 4003) and named in the reason.
   */
  fail(rfcCode, reason, error) {
    this.onError(error);
    if (this.ws) this.ws.close(rfcCode + 3000, `${rfcCode}: ${reason}`);
  }

  /** @private Handles one WebSocket message. */
  receive(data) {
    if (typeof data === "string") {
      this.fail(1003, "text messages are not MagicNet", new Error("the server sent a text WebSocket message"));
      return;
    }
    let messages;
    try {
      messages = decodeAll(data);
    } catch (error) {
      this.fail(1002, "bad MessagePack", error);
      return;
    }
    for (const message of messages) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return; // closed by an earlier message
      if (!Array.isArray(message) || message.length !== 2 || typeof message[0] !== "number" || !Array.isArray(message[1])) {
        this.fail(1002, "bad MagicNet message", new Error(`not a [type, params] message: ${JSON.stringify(message, jsonSafe)}`));
        return;
      }
      try {
        this.dispatch(message[0], message[1]);
      } catch (error) {
        this.onError(error);
      }
    }
  }

  /** @private Routes one message to the library logic or the application's handler. */
  dispatch(type, params) {
    switch (type) {
      case MessageType.MOTD:
        if (this.motd !== null) return; // a second MOTD is ignored
        this.motd = params[0];
        this.onMotd(this.motd);
        // HELLO goes first, then whatever the application queued before the handshake.
        this.queue.unshift(encode([MessageType.HELLO, [PROTOCOL_VERSION, this.networkHash]]));
        this.active = true;
        this.flush();
        this.activated();
        this.onActive();
        return;
      case MessageType.DISCONNECT:
        this.disconnect = { reason: params[0], detail: params[1] ?? null };
        this.onDisconnect(this.disconnect.reason, this.disconnect.detail);
        return;
      case MessageType.SHUTDOWN:
        this.onShutdown();
        return;
      case MessageType.SHARED_PARAMETER:
        this.sharedParameters.set(params[0], params[1]);
        if (params[0] === "rp") this.repository = params[1];
        this.onSharedParameter(params[0], params[1]);
        return;
    }
    const handler = this.handlers.get(type);
    if (handler) handler(params, type);
    else this.onUnhandled(type, params);
  }
}

/** JSON.stringify replacer for error messages: shows BigInt, bytes and maps readably. */
function jsonSafe(_key, value) {
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Uint8Array) return `bin(${[...value].map((b) => b.toString(16).padStart(2, "0")).join(" ")})`;
  if (value instanceof Map) return Object.fromEntries(value);
  return value;
}
