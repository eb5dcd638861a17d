// Names of the topics and the group pop consumption uses besides the subscribed topic.
//
// Retry topic: we use upstream's V1 pop retry naming, `%RETRY%{group}_{topic}` (KeyBuilder
// buildPopRetryTopicV1), one retry topic per (group, topic). Not the remoting `%RETRY%{group}`: that
// one is shared by every topic a group consumes, and a pop for topic A that reads it would have to
// skip (and so consume) the retries of topic B. Not V2 (`%RETRY%{group}+{topic}`): `+` is outside the
// topic-name character set our validator (like upstream's) enforces. As upstream, the name can be
// ambiguous (group `a_b` + topic `c` vs group `a` + topic `b_c`); group and topic names that collide
// that way share a retry topic.

import { dlqTopicOf, RETRY_GROUP_TOPIC_PREFIX, REVIVE_TOPIC_PREFIX } from "../../common/topic-validator.ts";

/** The consumer group whose offsets record how far each revive queue is resolved (upstream PopAckConstants.REVIVE_GROUP). */
export const REVIVE_GROUP = "CID_RMQ_SYS_REVIVE_GROUP";
/** Queues of a pop retry topic (upstream PopAckConstants.retryQueueNum, 1). */
export const POP_RETRY_QUEUE_NUMS = 1;
/** Queues of a DLQ topic (upstream MixAll DLQ_NUMS_PER_GROUP, 1). */
export const DLQ_QUEUE_NUMS = 1;
const POP_RETRY_SEPARATOR = "_";

/** `rmq_sys_REVIVE_LOG_{cluster}`: where check points and acks are written. */
export function reviveTopicOf(clusterName: string): string {
  return REVIVE_TOPIC_PREFIX + clusterName;
}

/** `%RETRY%{group}_{topic}`: where un-acked messages of `topic` come back for `group`. */
export function popRetryTopicOf(group: string, topic: string): string {
  return RETRY_GROUP_TOPIC_PREFIX + group + POP_RETRY_SEPARATOR + topic;
}

/** `%DLQ%{group}`. */
export function deadLetterTopicOf(group: string): string {
  return dlqTopicOf(group);
}
