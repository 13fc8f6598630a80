/**
 * `text[]` as PostgreSQL reads it back exactly: every element quoted. MikroORM's own array marshalling leaves
 * elements bare unless they hold `"{},\`, so PostgreSQL reads a tag `NULL` as a null element and trims a tag's
 * surrounding blanks.
 */
import { ArrayType, type Platform, type TransformContext } from '@mikro-orm/core';

/** One element of an array literal: quoted, with `\` and `"` escaped. */
function quoted(item: string): string {
  return `"${item.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export class TextArrayType extends ArrayType<string> {
  override convertToDatabaseValue(value: string[] | null, platform: Platform, context?: TransformContext): string | null {
    if (!Array.isArray(value)) return super.convertToDatabaseValue(value, platform, context);
    return `{${value.map((item) => quoted(String(item))).join(',')}}`;
  }
}
