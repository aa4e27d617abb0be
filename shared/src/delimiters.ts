/**
 * The field delimiters decisum reads (the contract: `,` `;` tab `|`), in the order ties are broken
 * when one is detected. The one list: job options validate against it and the CSV engine detects
 * from it. A module of its own, importing nothing, so the engine's worker threads load it alone
 * (`@decisum/shared/delimiters`).
 */
export const DELIMITERS = [',', ';', '\t', '|'] as const;
export type Delimiter = (typeof DELIMITERS)[number];
