// Property names the store reads or writes (upstream MessageConst) and the properties wire separators.

export const MessageConst = {
  PROPERTY_KEYS: "KEYS",
  PROPERTY_TAGS: "TAGS",
  PROPERTY_WAIT_STORE_MSG_OK: "WAIT",
  PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX: "UNIQ_KEY",
  /** KEYS holds several keys separated by this. */
  KEY_SEPARATOR: " ",
} as const;

/** Between a property name and its value in the PROPERTIES field. */
export const NAME_VALUE_SEPARATOR = "\u0001";
/** After each name/value pair in the PROPERTIES field. */
export const PROPERTY_SEPARATOR = "\u0002";
