import { Migration } from '@mikro-orm/migrations';

export class Migration20261127055055 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create type "task_type" as enum ('FEATURE', 'BUG_FIX', 'REFACTOR', 'DOCUMENTATION', 'RESEARCH', 'DEPLOYMENT', 'MAINTENANCE', 'DEVELOPMENT', 'OPTIMIZATION', 'SYSTEM');`);
    this.addSql(`create type "task_priority" as enum ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL');`);
    this.addSql(`create type "task_status" as enum ('PENDING', 'IN_PROGRESS', 'REVIEW', 'BLOCKED', 'COMPLETED', 'FAILED', 'CANCELLED');`);
    this.addSql(`create table "task" ("id" uuid not null, "title" varchar(255) not null, "description" text null, "type" "task_type" not null, "priority" "task_priority" not null, "status" "task_status" not null default 'PENDING', "assignee" varchar(255) null, "created_by" varchar(255) not null, "tags" text[] not null default '{}', "metadata" jsonb not null default '{}', "context" jsonb not null default '{}', "progress" double precision not null default 0, "result" text null, "error_message" text null, "retry_count" int not null default 0, "estimated_minutes" int null, "actual_minutes" int null, "due_at" timestamptz(3) null, "started_at" timestamptz(3) null, "completed_at" timestamptz(3) null, "archived_at" timestamptz(3) null, "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "version" int not null default 1, "parent_id" uuid null, constraint "task_pkey" primary key ("id"), constraint task_progress_check check (progress >= 0 and progress <= 1), constraint task_estimated_minutes_check check (estimated_minutes >= 0), constraint task_title_check check (length(btrim(title)) between 1 and 255), constraint task_parent_check check (parent_id <> id));`);
    this.addSql(`create index "task_created_at_id_idx" on "task" ("created_at", "id");`);
    this.addSql(`create index "task_updated_at_id_idx" on "task" ("updated_at", "id");`);
    this.addSql(`create index "task_priority_id_idx" on "task" ("priority", "id");`);
    this.addSql(`create index "task_status_id_idx" on "task" ("status", "id");`);
    this.addSql(`create index "task_due_at_id_idx" on "task" ("due_at", "id");`);
    this.addSql(`create index "task_title_id_idx" on "task" ("title", "id");`);
    this.addSql(`create index "task_type_idx" on "task" ("type");`);
    this.addSql(`create index "task_assignee_idx" on "task" ("assignee");`);
    this.addSql(`create index "task_created_by_idx" on "task" ("created_by");`);
    this.addSql(`create index "task_parent_id_idx" on "task" ("parent_id");`);
    this.addSql(`create index "task_archived_at_idx" on "task" ("archived_at") where "archived_at" is not null;`);
    this.addSql(`create index "task_tags_gin_idx" on "task" using gin ("tags");`);

    this.addSql(`alter table "task" add constraint "task_parent_id_foreign" foreign key ("parent_id") references "task" ("id") on update cascade on delete set null;`);
  }

}
