import { Migration } from '@mikro-orm/migrations';

/**
 * Wakes every instance's subscription listener when events commit (docs/DESIGN.md, "Subscriptions across
 * instances").
 *
 * A statement-level trigger, not a call in each service: every path that writes events (the services' statements,
 * in a transaction or alone) notifies inside its own transaction, PostgreSQL delivers the notification only at
 * commit (never after a rollback) and folds duplicates within a transaction into one, and no write path can forget
 * it. The payload is empty: it is a wake-up, the listeners read the change feed itself. Triggers are not part of
 * MikroORM's schema snapshot, so `.snapshot.json` does not change.
 */
export class Migration20261127090000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create or replace function task_event_notify() returns trigger language plpgsql as $$
begin
  perform pg_notify('task_events', '');
  return null;
end;
$$;`);
    this.addSql(`create trigger task_event_notify after insert on "task_event" for each statement execute function task_event_notify();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists task_event_notify on "task_event";`);
    this.addSql(`drop function if exists task_event_notify();`);
  }
}
