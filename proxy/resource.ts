// Topic and group names with namespaces. Upstream 5.x stores a namespaced resource as
// `<namespace>%<name>` (NamespaceUtil). Java/Go clients put the namespace in every Resource; the Node
// SDK only in some and sends x-mq-namespace instead, so a Resource's own namespace wins and the
// header fills in (protocol.md §5).

import type { Resource } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import type { CallContext } from "./context.ts";

export const NAMESPACE_SEPARATOR = "%";

export interface ResolvedResource {
  /** What clients call it. */
  name: string;
  namespace: string;
  /** What the backend stores it as: `namespace%name`, or just `name` without a namespace. */
  fullName: string;
}

export function resolveResource(
  resource: Resource | undefined,
  call: Pick<CallContext, "namespace">,
): ResolvedResource {
  const name = resource?.name ?? "";
  const namespace = resource?.resourceNamespace || call.namespace;
  return { name, namespace, fullName: wrapNamespace(namespace, name) };
}

export function wrapNamespace(namespace: string, name: string): string {
  if (namespace.length === 0 || name.length === 0) return name;
  if (name.startsWith(`${namespace}${NAMESPACE_SEPARATOR}`)) return name;
  return `${namespace}${NAMESPACE_SEPARATOR}${name}`;
}

/** The client-facing name of a stored one (the inverse of wrapNamespace for the same namespace). */
export function unwrapNamespace(namespace: string, fullName: string): string {
  if (namespace.length === 0) return fullName;
  const prefix = `${namespace}${NAMESPACE_SEPARATOR}`;
  return fullName.startsWith(prefix) ? fullName.slice(prefix.length) : fullName;
}
