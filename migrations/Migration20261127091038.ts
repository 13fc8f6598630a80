import { Migration } from '@mikro-orm/migrations';

export class Migration20261127091038 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create index "task_assignee_created_at_id_idx" on "task" ("assignee", "created_at", "id") where "archived_at" is null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "task_assignee_created_at_id_idx";`);
  }

}
