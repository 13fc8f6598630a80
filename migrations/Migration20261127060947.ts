import { Migration } from '@mikro-orm/migrations';

export class Migration20261127060947 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create extension if not exists pg_trgm;`);
    this.addSql(`create type "task_event_kind" as enum ('CREATED', 'UPDATED', 'STATUS_CHANGED', 'DEPENDENCY_ADDED', 'DEPENDENCY_REMOVED', 'ARCHIVED', 'UNARCHIVED', 'DELETED');`);
    this.addSql(`create table "task_dependency" ("task_id" uuid not null, "depends_on_id" uuid not null, "created_at" timestamptz(3) not null, constraint "task_dependency_pkey" primary key ("task_id", "depends_on_id"), constraint task_dependency_not_self_check check (task_id <> depends_on_id));`);
    this.addSql(`create index "task_dependency_depends_on_id_idx" on "task_dependency" ("depends_on_id");`);

    this.addSql(`create table "task_event" ("id" bigserial primary key, "task_id" uuid not null, "kind" "task_event_kind" not null, "actor" varchar(255) not null, "at" timestamptz(3) not null, "changes" jsonb not null default '{}', "xid" xid8 not null default pg_current_xact_id());`);
    this.addSql(`create index "task_event_xid_id_idx" on "task_event" ("xid", "id");`);
    this.addSql(`create index "task_event_task_id_id_idx" on "task_event" ("task_id", "id");`);

    this.addSql(`create table "task_execution" ("id" uuid not null, "task_id" uuid not null, "status" "task_status" not null, "started_at" timestamptz(3) not null, "completed_at" timestamptz(3) null, "progress" double precision not null default 0, "logs" jsonb not null default '[]', "context" jsonb not null default '{}', constraint "task_execution_pkey" primary key ("id"), constraint task_execution_progress_check check (progress >= 0 and progress <= 1));`);
    this.addSql(`create index "task_execution_task_id_started_at_idx" on "task_execution" ("task_id", "started_at", "id");`);
    this.addSql(`create unique index "task_execution_one_open_idx" on "task_execution" ("task_id") where "completed_at" is null;`);

    this.addSql(`alter table "task_dependency" add constraint "task_dependency_task_id_foreign" foreign key ("task_id") references "task" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "task_dependency" add constraint "task_dependency_depends_on_id_foreign" foreign key ("depends_on_id") references "task" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "task_execution" add constraint "task_execution_task_id_foreign" foreign key ("task_id") references "task" ("id") on update cascade on delete cascade;`);

    this.addSql(`create index "task_title_trgm_idx" on "task" using gin ("title" gin_trgm_ops);`);
    this.addSql(`create index "task_description_trgm_idx" on "task" using gin ("description" gin_trgm_ops);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "task_dependency" cascade;`);

    this.addSql(`drop table if exists "task_event" cascade;`);

    this.addSql(`drop table if exists "task_execution" cascade;`);

    this.addSql(`drop index "task_title_trgm_idx";`);
    this.addSql(`drop index "task_description_trgm_idx";`);

    this.addSql(`drop type "task_event_kind";`);
  }

}
