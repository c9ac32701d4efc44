import type { XmlElement, XmlValue } from "./types.ts";

// ehome-2.0 §8 rule 3 (lenient in): element names are matched case-insensitively (`VideoId` =
// `VideoID`). The exact name is tried first, so the common case costs one property lookup.

function findKey(el: XmlElement, name: string): string | undefined {
  if (Object.hasOwn(el, name)) return name;
  const lower = name.toLowerCase();
  for (const k of Object.keys(el)) if (k.toLowerCase() === lower) return k;
  return undefined;
}

/** The raw value of a child element, case-insensitively. */
export function childValue(el: XmlElement | undefined, name: string): XmlValue | undefined {
  if (!el || typeof el !== "object") return undefined;
  const k = findKey(el, name);
  return k === undefined ? undefined : el[k];
}

/** The first child element with this name, as an element (text-only or empty children give {}). */
export function childElement(el: XmlElement | undefined, name: string): XmlElement | undefined {
  let v = childValue(el, name);
  if (Array.isArray(v)) v = v[0];
  if (v === undefined) return undefined;
  return typeof v === "string" ? {} : (v as XmlElement);
}

/** The text of the first child element with this name; undefined when absent or not text. */
export function childText(el: XmlElement | undefined, name: string): string | undefined {
  let v = childValue(el, name);
  if (Array.isArray(v)) v = v[0];
  return typeof v === "string" ? v : undefined;
}

/** The texts of every child element with this name (repeatable elements such as `PicID`). */
export function childTexts(el: XmlElement | undefined, name: string): string[] {
  const v = childValue(el, name);
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.filter((x): x is string => typeof x === "string" && x.length > 0);
}

/** Reads the catalogue fields of a Params element into a record keyed by field key. */
export function readFields<K extends string>(
  el: XmlElement | undefined,
  fields: Readonly<Record<K, string>>,
): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const key of Object.keys(fields) as K[]) {
    const v = childText(el, fields[key]);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

export type FieldValue = string | number | XmlElement | ReadonlyArray<string | number> | undefined;

/**
 * Builds a Params element from catalogue fields, in catalogue order, skipping undefined values.
 * Keys missing from `fields` are a programming error and are rejected by the type system.
 */
export function buildFields<K extends string>(
  fields: Readonly<Record<K, string>>,
  values: Partial<Record<K, FieldValue>>,
): XmlElement {
  const out: XmlElement = {};
  for (const key of Object.keys(fields) as K[]) {
    const v = values[key];
    if (v === undefined) continue;
    if (Array.isArray(v)) out[fields[key]] = v.map(String);
    else if (typeof v === "object") out[fields[key]] = v as XmlElement;
    else out[fields[key]] = String(v);
  }
  return out;
}
