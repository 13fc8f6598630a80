/**
 * Every entity of the application, handed to the ORM by whoever opens it (the server, the CLI, the scripts): the
 * data layer (src/db/) does not import the domain.
 */
import { TaskSchema } from './tasks/task.entity.js';
import { TaskDependencySchema } from './dependencies/dependency.entity.js';
import { TaskExecutionSchema } from './tasks/execution.entity.js';
import { TaskEventSchema } from './events/event.entity.js';
import { WebhookSchema } from './webhooks/webhook.entity.js';
import { WebhookDeliverySchema } from './webhooks/delivery.entity.js';

export const ENTITIES = [TaskSchema, TaskDependencySchema, TaskExecutionSchema, TaskEventSchema, WebhookSchema, WebhookDeliverySchema];
