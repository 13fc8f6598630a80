import { Migration } from '@mikro-orm/migrations';

export class Migration20261206134237 extends Migration {

  override name = 'Migration20261206134237';

  override up(): void | Promise<void> {
    this.addSql(`create type "webhook_delivery_status" as enum ('PENDING', 'DELIVERED', 'FAILED');`);
    this.addSql(`create table "webhook" ("id" uuid not null, "url" varchar(2048) not null, "kinds" text[] not null default '{}', "filter_task_id" uuid null, "filter_assignee" varchar(255) null, "filter_tags_any" text[] null, "description" varchar(500) null, "enabled" boolean not null default true, "disabled_reason" text null, "disabled_at" timestamptz(3) null, "secret" varchar(255) not null, "previous_secret" varchar(255) null, "previous_secret_expires_at" timestamptz(3) null, "position_xid" xid8 not null, "position_id" bigint not null, "lease_owner" varchar(255) null, "lease_expires_at" timestamptz(3) null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "version" int not null default 1, primary key ("id"));`);
    this.addSql(`create index "webhook_created_at_id_idx" on "webhook" ("created_at", "id");`);
    this.addSql(`create index "webhook_lease_idx" on "webhook" ("lease_expires_at") where "enabled";`);

    this.addSql(`create table "webhook_delivery" ("id" uuid not null, "webhook_id" uuid not null, "event_id" bigint not null, "redelivery" boolean not null default false, "status" "webhook_delivery_status" not null default 'PENDING', "attempts" int not null default 0, "last_status_code" int null, "last_latency_ms" int null, "last_error" text null, "last_attempt_at" timestamptz(3) null, "next_attempt_at" timestamptz(3) null, "retry_started_at" timestamptz(3) not null, "created_at" timestamptz(3) not null, "delivered_at" timestamptz(3) null, primary key ("id"));`);
    this.addSql(`create index "webhook_delivery_webhook_id_created_at_id_idx" on "webhook_delivery" ("webhook_id", "created_at", "id");`);
    this.addSql(`create index "webhook_delivery_pending_idx" on "webhook_delivery" ("webhook_id", "next_attempt_at") where "status" = 'PENDING';`);
    this.addSql(`create unique index "webhook_delivery_webhook_id_event_id_key" on "webhook_delivery" ("webhook_id", "event_id") where not "redelivery";`);

    this.addSql(`alter table "webhook_delivery" add constraint "webhook_delivery_webhook_id_foreign" foreign key ("webhook_id") references "webhook" ("id") on delete cascade;`);
    this.addSql(`alter table "webhook_delivery" add constraint "webhook_delivery_attempts_check" check (attempts >= 0);`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "webhook_delivery" drop constraint "webhook_delivery_webhook_id_foreign";`);

    this.addSql(`drop table if exists "webhook" cascade;`);
    this.addSql(`drop table if exists "webhook_delivery" cascade;`);

    this.addSql(`drop type "webhook_delivery_status";`);
  }

}
