import { z } from "zod";

/**
 * Capability set (the QUERY module, ehome-2.0 §8 row "Capability set"): GETDEVICECONFIG with
 * `ConfigCmd` `GetDevAbility`. The real block is not public, so the answer is kept whole as XML
 * (`configXml`, element name → text or nested elements) and also exposed parsed (`abilities`) for
 * the element names the catalogue knows (`BLOCKS.devAbility`, provisional).
 */

/** An XML element tree as the agent's codec gives it: name → text, nested element, or repeats. */
export type XmlTree = { [name: string]: string | XmlTree | Array<string | XmlTree> };
export const XmlTree: z.ZodType<XmlTree> = z.lazy(() =>
  z.record(z.string(), z.union([z.string(), XmlTree, z.array(z.union([z.string(), XmlTree]))])),
);

/** Result of the `capabilities` command. */
export const CapabilitiesResult = z.object({
  /** Known fields: numbers for counts, booleans for `true`/`false`, text otherwise. */
  abilities: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])),
  /** The `ConfigXML` element as the device sent it. */
  configXml: XmlTree,
});
export type CapabilitiesResult = z.infer<typeof CapabilitiesResult>;
