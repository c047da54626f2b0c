export {
  type ActionsRequestRecord,
  type FakeActionsClock,
  FakeActionsService,
  type FakeActionsServiceOptions,
  type FakeSession,
  type MessageDelivery,
  type QueueScaleSetJob,
} from './server.ts';
export type {
  FakeAgent,
  FakeScaleSet,
  FakeScaleSetJob,
  JobMessage,
  JobMessageType,
  JobResult,
  JobState,
  Statistics,
} from './wire.ts';
