/**
 * MikroORM's metadata of the app's entities without a database: the ORM is built (discovery runs in its
 * constructor) but never connected, for tests of what is derived from the metadata.
 */
import { MikroORM } from '@mikro-orm/postgresql';
import { ENTITIES } from '../../src/entities.js';

/** An unconnected ORM over the app's entities; its `em` answers `getMetadata()` and `getComparator()`. */
export function metadataOnly(): MikroORM {
  return new MikroORM({ entities: ENTITIES, dbName: 'metadata_only', discovery: { skipSyncDiscovery: false }, metadataCache: { enabled: false } });
}
