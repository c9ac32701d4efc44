import type { CapabilitiesResult, XmlTree } from "../../lib/contracts/capabilities.ts";
import { BLOCKS, type CatalogueView } from "./catalogue.ts";
import { childElement, readFields, type XmlElement } from "./codec/index.ts";
import { configXmlOf } from "./device-status.ts";

/**
 * The answer to GETDEVICECONFIG `GetDevAbility` (ehome-2.0 §8 row "Capability set"): the whole
 * `ConfigXML` kept as sent, plus the fields of the provisional `BLOCKS.devAbility` block the
 * catalogue names, read leniently (counts as numbers, `true`/`false` as booleans, else text).
 */
export function parseCapabilities(params: XmlElement, view: CatalogueView): CapabilitiesResult {
  const configXml = configXmlOf(params, view) ?? {};
  const block = childElement(configXml, BLOCKS.devAbility.block);
  const abilities: CapabilitiesResult["abilities"] = {};
  if (block) {
    const fields = readFields(block, BLOCKS.devAbility.fields);
    for (const [key, raw] of Object.entries(fields) as [string, string][]) {
      const text = raw.trim();
      if (/^\d{1,9}$/.test(text)) abilities[key] = Number(text);
      else if (/^(true|false)$/i.test(text)) abilities[key] = text.toLowerCase() === "true";
      else abilities[key] = text;
    }
  }
  return { abilities, configXml: configXml as XmlTree };
}
