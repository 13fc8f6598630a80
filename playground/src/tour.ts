/**
 * The README's tour, one tab per step, preloaded in the playground. The operations are anonymous, one per tab:
 * GraphiQL 4 keeps the first tab's operation name when another preloaded tab is run, and the server would refuse
 * that name.
 */
export const TOUR = [
  {
    query: `# 1. Create two tasks. Choosing the id makes retries safe.
mutation {
  a: createTask(input: { title: "Design the schema", priority: HIGH, assignee: "ada" }) { id version }
  b: createTask(input: { title: "Build the API", tags: ["backend"] }) { id }
}`,
  },
  {
    query: `# 2. Make B wait for A (paste their ids): B is blocked and cannot start yet.
mutation ($taskId: ID!, $dependsOnId: ID!) {
  addTaskDependency(taskId: $taskId, dependsOnId: $dependsOnId) {
    isBlocked
    availableTransitions
    dependencies { title }
  }
}`,
    variables: '{ "taskId": "<id of B>", "dependsOnId": "<id of A>" }',
  },
  {
    query: `# 3. Start and complete A.
mutation ($id: ID!) {
  startTask(id: $id) { status startedAt }
  reportProgress(id: $id, progress: 0.5, message: "halfway") { progress }
  completeTask(id: $id, result: "schema.graphql") { status actualMinutes version }
}`,
    variables: '{ "id": "<id of A>" }',
  },
  {
    query: `# 4. List with filters and an order; pass pageInfo.endCursor as after for the next page.
query {
  tasks(first: 10, filter: { or: [{ priority: [HIGH, CRITICAL] }, { tagsAny: ["backend"] }] }, orderBy: [{ field: PRIORITY, direction: DESC }]) {
    totalCount
    nodes { title priority status isBlocked }
    pageInfo { hasNextPage endCursor }
  }
}`,
  },
  {
    query: `# 5. Statistics, computed in the database.
query {
  taskStatistics { total overdue blocked byStatus { status count } byAssignee { assignee count } }
}`,
  },
  {
    query: `# 6. The change feed: everything that happened, in commit order. Poll with the last cursor you saw.
query {
  taskEvents(first: 20) { nodes { kind taskId actor at changes cursor } pageInfo { endCursor } }
}`,
  },
  {
    query: `# 7. Live events over WebSocket: run this, then a mutation in another tab, and watch it arrive.
# To resume after a disconnect, pass the last cursor you saw as after.
subscription {
  taskEvents { kind taskId actor at changes cursor }
}`,
  },
  {
    query: `# 8. Webhooks: one signed POST per matching task event, in change-feed order, retried until a 2xx.
# Keep the secret: it is shown this once (it signs every request, see the README). An https URL is required;
# http to a loopback receiver (http://127.0.0.1:9000/hook) needs the server started with WEBHOOK_ALLOW_PRIVATE=true.
# With authentication on, webhooks need a token with the tasks:write scope.
mutation {
  createWebhook(input: { url: "https://hooks.example.com/tasks", kinds: [CREATED, STATUS_CHANGED], description: "tour" }) {
    webhook { id url kinds enabled }
    secret
  }
}`,
  },
  {
    query: `# 9. After changing a task (steps 1 and 3), read the webhook and its deliveries (paste its id).
query ($webhookId: ID!) {
  webhook(id: $webhookId) { url enabled disabledReason cursor }
  webhookDeliveries(webhookId: $webhookId, first: 10) {
    nodes { eventId event { kind taskId } status attempts lastStatusCode lastLatencyMs lastError nextAttemptAt }
  }
}`,
    variables: '{ "webhookId": "<id of the webhook>" }',
  },
];
