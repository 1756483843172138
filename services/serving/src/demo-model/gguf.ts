/**
 * A small GGUF (version 3) writer and reader, enough to produce the demo model from code and to
 * check its structure in tests. Layout per ggml's docs/gguf.md:
 *
 *   header      magic "GGUF", u32 version, u64 tensor count, u64 metadata count
 *   metadata    (string key, u32 value type, value)*
 *   tensor info (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)*
 *   padding     to `general.alignment` (default 32)
 *   tensor data each tensor at its offset (relative to the data start), each aligned
 *
 * All integers are little-endian; strings are a u64 byte length followed by UTF-8 without NUL.
 * Dimensions are in ggml order: ne[0] is the innermost (contiguous) dimension.
 */

import { TresorError } from '@tresor/protocol';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_metadata_value_type (gguf.md, "File Structure"). */
export const GgufType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufType = (typeof GgufType)[keyof typeof GgufType];

/** The ggml tensor types this writer emits (ggml.h `enum ggml_type`). */
export const GgmlType = { F32: 0, F16: 1 } as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

const GGML_TYPE_SIZE: Readonly<Record<number, number>> = { 0: 4, 1: 2 };

export type GgufScalarType = Exclude<GgufType, typeof GgufType.ARRAY>;

export type GgufValue =
  | { readonly type: GgufScalarType; readonly value: number | bigint | boolean | string }
  | {
      readonly type: typeof GgufType.ARRAY;
      readonly itemType: GgufScalarType;
      readonly items: readonly (number | bigint | boolean | string)[];
    };

export interface GgufTensor {
  readonly name: string;
  /** ggml order: dims[0] is contiguous. */
  readonly dims: readonly number[];
  readonly type: GgmlType;
  /** Row-major values in ggml order, `product(dims)` of them. */
  readonly data: Float32Array;
}

export interface GgufFile {
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly GgufTensor[];
}

export interface GgufTensorInfo {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: number;
  /** Offset relative to the start of the tensor data section. */
  readonly offset: bigint;
}

export interface ParsedGguf {
  readonly version: number;
  readonly alignment: number;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly GgufTensorInfo[];
  /** Absolute file offset where tensor data starts. */
  readonly dataOffset: number;
}

class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number): void {
    this.reserve(1);
    this.view.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.view.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  u64(v: bigint | number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  i64(v: bigint | number): void {
    this.reserve(8);
    this.view.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f16(v: number): void {
    this.u16(float32ToFloat16Bits(v));
  }
  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    this.reserve(pad);
    this.buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeScalar(sink: ByteSink, type: GgufScalarType, value: number | bigint | boolean | string): void {
  const num = (): number => {
    if (typeof value !== 'number') throw new TypeError(`GGUF type ${type} needs a number`);
    return value;
  };
  switch (type) {
    case GgufType.UINT8:
      sink.u8(num());
      return;
    case GgufType.INT8:
      sink.i8(num());
      return;
    case GgufType.UINT16:
      sink.u16(num());
      return;
    case GgufType.INT16:
      sink.i16(num());
      return;
    case GgufType.UINT32:
      sink.u32(num());
      return;
    case GgufType.INT32:
      sink.i32(num());
      return;
    case GgufType.FLOAT32:
      sink.f32(num());
      return;
    case GgufType.FLOAT64:
      sink.f64(num());
      return;
    case GgufType.BOOL:
      if (typeof value !== 'boolean') throw new TypeError('GGUF bool needs a boolean');
      sink.u8(value ? 1 : 0);
      return;
    case GgufType.STRING:
      if (typeof value !== 'string') throw new TypeError('GGUF string needs a string');
      sink.string(value);
      return;
    case GgufType.UINT64:
    case GgufType.INT64:
      if (typeof value !== 'bigint' && typeof value !== 'number')
        throw new TypeError('GGUF 64-bit needs a bigint');
      if (type === GgufType.UINT64) sink.u64(value);
      else sink.i64(value);
      return;
  }
}

/** Serializes a GGUF v3 file. Deterministic: equal input gives equal bytes. */
export function encodeGguf(file: GgufFile, alignment = GGUF_DEFAULT_ALIGNMENT): Uint8Array {
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(file.tensors.length);
  sink.u64(file.metadata.size);
  for (const [key, v] of file.metadata) {
    sink.string(key);
    sink.u32(v.type);
    if (v.type === GgufType.ARRAY) {
      sink.u32(v.itemType);
      sink.u64(v.items.length);
      for (const item of v.items) writeScalar(sink, v.itemType, item);
    } else {
      writeScalar(sink, v.type, v.value);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of file.tensors) {
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new RangeError(`tensor ${t.name}: dims give ${count} values, data has ${t.data.length}`);
    }
    sink.string(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(t.type);
    sink.u64(offset);
    offsets.push(offset);
    const size = count * GGML_TYPE_SIZE[t.type]!;
    offset += size + ((alignment - (size % alignment)) % alignment);
  }
  sink.padTo(alignment);
  for (const t of file.tensors) {
    if (t.type === GgmlType.F32) for (const x of t.data) sink.f32(x);
    else for (const x of t.data) sink.f16(x);
    sink.padTo(alignment);
  }
  return sink.result();
}

/** IEEE 754 binary16 bits for a float, round to nearest even. */
export function float32ToFloat16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  // Rounding may carry into the exponent (up to infinity), which is still the right encoding.
  return sign | half;
}

class ByteSource {
  private readonly view: DataView;
  pos = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) {
      throw malformed(`truncated at byte ${this.pos} (needs ${n} more of ${this.bytes.length})`);
    }
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  i8(): number {
    this.need(1);
    return this.view.getInt8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(): number {
    this.need(2);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  f32(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** A u64 count, refused when it cannot fit in what is left of the file. */
  count(minItemSize: number): number {
    const n = this.u64();
    if (n > BigInt(Math.floor((this.bytes.length - this.pos) / Math.max(minItemSize, 1)))) {
      throw malformed(`count ${n} at byte ${this.pos - 8} exceeds the file`);
    }
    return Number(n);
  }
  string(): string {
    const n = this.count(1);
    const b = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      throw malformed(`string at byte ${this.pos - n} is not UTF-8`);
    }
  }
}

function malformed(why: string): TresorError {
  return new TresorError('MODEL_LOAD_FAILED', `Not a valid GGUF file: ${why}.`);
}

const SCALAR_SIZE: Readonly<Record<number, number>> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  8: 8,
  10: 8,
  11: 8,
  12: 8,
};

function readScalar(src: ByteSource, type: number): number | bigint | boolean | string {
  switch (type) {
    case GgufType.UINT8:
      return src.u8();
    case GgufType.INT8:
      return src.i8();
    case GgufType.UINT16:
      return src.u16();
    case GgufType.INT16:
      return src.i16();
    case GgufType.UINT32:
      return src.u32();
    case GgufType.INT32:
      return src.i32();
    case GgufType.FLOAT32:
      return src.f32();
    case GgufType.FLOAT64:
      return src.f64();
    case GgufType.BOOL: {
      const b = src.u8();
      if (b > 1) throw malformed(`bool value ${b} at byte ${src.pos - 1}`);
      return b === 1;
    }
    case GgufType.STRING:
      return src.string();
    case GgufType.UINT64:
      return src.u64();
    case GgufType.INT64:
      return src.i64();
    default:
      throw malformed(`unknown value type ${type} at byte ${src.pos - 4}`);
  }
}

/**
 * Parses the header, metadata and tensor infos (not the tensor data) and checks that every
 * tensor's data lies inside the file at an aligned offset, without overlapping another.
 */
export function parseGguf(bytes: Uint8Array): ParsedGguf {
  const src = new ByteSource(bytes);
  if (src.u32() !== GGUF_MAGIC) throw malformed('bad magic (expected "GGUF")');
  const version = src.u32();
  if (version !== 2 && version !== 3) throw malformed(`unsupported version ${version}`);
  const tensorCount = src.count(8 + 4 + 4 + 8);
  const kvCount = src.count(8 + 4);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = src.string();
    if (metadata.has(key)) throw malformed(`duplicate metadata key ${JSON.stringify(key)}`);
    const type = src.u32();
    if (type === GgufType.ARRAY) {
      const itemType = src.u32();
      if (itemType === GgufType.ARRAY || SCALAR_SIZE[itemType] === undefined) {
        throw malformed(`array of unsupported type ${itemType} in ${JSON.stringify(key)}`);
      }
      const n = src.count(SCALAR_SIZE[itemType]);
      const items: (number | bigint | boolean | string)[] = [];
      for (let j = 0; j < n; j++) items.push(readScalar(src, itemType));
      metadata.set(key, { type: GgufType.ARRAY, itemType: itemType as GgufScalarType, items });
    } else {
      metadata.set(key, { type: type as GgufScalarType, value: readScalar(src, type) });
    }
  }
  const alignValue = metadata.get('general.alignment');
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (alignValue !== undefined) {
    if (alignValue.type !== GgufType.UINT32 || typeof alignValue.value !== 'number') {
      throw malformed('general.alignment must be a u32');
    }
    alignment = alignValue.value;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
      throw malformed(`general.alignment ${alignment} is not a power of two`);
    }
  }
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = src.string();
    if (names.has(name)) throw malformed(`duplicate tensor ${JSON.stringify(name)}`);
    names.add(name);
    const nDims = src.u32();
    if (nDims < 1 || nDims > 4) throw malformed(`tensor ${name} has ${nDims} dimensions`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const ne = src.u64();
      if (ne === 0n || ne > BigInt(Number.MAX_SAFE_INTEGER))
        throw malformed(`tensor ${name} dimension ${ne}`);
      dims.push(Number(ne));
    }
    const type = src.u32();
    const offset = src.u64();
    if (offset % BigInt(alignment) !== 0n) throw malformed(`tensor ${name} offset ${offset} is not aligned`);
    tensors.push({ name, dims, type, offset });
  }
  const dataOffset = src.pos + ((alignment - (src.pos % alignment)) % alignment);
  const spans: [bigint, bigint, string][] = [];
  for (const t of tensors) {
    const size = GGML_TYPE_SIZE[t.type];
    if (size === undefined) continue; // quantized types: sizes not modelled here
    const end = t.offset + BigInt(t.dims.reduce((a, b) => a * b, 1) * size);
    if (BigInt(dataOffset) + end > BigInt(bytes.length))
      throw malformed(`tensor ${t.name} data runs past the end`);
    spans.push([t.offset, end, t.name]);
  }
  spans.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1])
      throw malformed(`tensors ${spans[i - 1]![2]} and ${spans[i]![2]} overlap`);
  }
  return { version, alignment, metadata, tensors, dataOffset };
}

/** Reads one F32 or F16 tensor's values from a parsed file. */
export function readGgufTensor(bytes: Uint8Array, parsed: ParsedGguf, name: string): Float32Array {
  const t = parsed.tensors.find((x) => x.name === name);
  if (t === undefined) throw malformed(`no tensor ${name}`);
  const count = t.dims.reduce((a, b) => a * b, 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset + parsed.dataOffset + Number(t.offset));
  const out = new Float32Array(count);
  if (t.type === GgmlType.F32) for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  else if (t.type === GgmlType.F16)
    for (let i = 0; i < count; i++) out[i] = float16BitsToFloat32(view.getUint16(i * 2, true));
  else throw malformed(`tensor ${name} has type ${t.type}, not F32/F16`);
  return out;
}

export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Convenience constructors for metadata values. */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: GgufType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufType.INT32, value }),
  f32: (value: number): GgufValue => ({ type: GgufType.FLOAT32, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufType.BOOL, value }),
  string: (value: string): GgufValue => ({ type: GgufType.STRING, value }),
  array: (itemType: GgufScalarType, items: readonly (number | bigint | boolean | string)[]): GgufValue => ({
    type: GgufType.ARRAY,
    itemType,
    items,
  }),
};
