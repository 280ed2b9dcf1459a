/**
 * The parts of Service (v1) and EndpointSlice (discovery.k8s.io/v1) that the node proxy
 * and the cluster DNS read. Declared here, in Kubernetes' field names and shapes, so that
 * the full API types can be passed in unchanged once they exist: every field is optional
 * where Kubernetes lets it be absent, and nothing here is written back.
 */

/** The metadata both kinds need. */
export interface ProxyObjectMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
}

export type ServiceProtocol = 'TCP' | 'UDP' | 'SCTP';

/** One entry of `Service.spec.ports`. */
export interface ServicePort {
  name?: string;
  /** Defaults to TCP. */
  protocol?: ServiceProtocol;
  port: number;
  /** Resolved into EndpointSlice ports by the endpoints controller; not read here. */
  targetPort?: number | string;
  nodePort?: number;
}

export interface ServiceSpec {
  /** ClusterIP (default), NodePort, LoadBalancer or ExternalName. */
  type?: string;
  /** A virtual IPv4 address, "None" for a headless Service, or absent. */
  clusterIP?: string;
  ports?: ServicePort[];
  /** None (default) or ClientIP. */
  sessionAffinity?: string;
  sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
  externalName?: string;
}

export interface Service {
  metadata: ProxyObjectMeta;
  spec?: ServiceSpec;
}

export interface EndpointConditions {
  /** Absent means unknown, which consumers treat as ready. */
  ready?: boolean | null;
  /** Absent means the same as `ready`. */
  serving?: boolean | null;
  /** Absent means false. */
  terminating?: boolean | null;
}

export interface SliceEndpoint {
  addresses: string[];
  conditions?: EndpointConditions;
  hostname?: string;
  nodeName?: string;
}

/** One entry of `EndpointSlice.ports`; an absent port number means "no port". */
export interface EndpointPort {
  name?: string | null;
  protocol?: ServiceProtocol | null;
  port?: number | null;
}

/** The label that names the Service an EndpointSlice belongs to. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface EndpointSlice {
  metadata: ProxyObjectMeta;
  /** IPv4, IPv6 or FQDN; only IPv4 slices are used. */
  addressType: string;
  endpoints?: SliceEndpoint[] | null;
  ports?: EndpointPort[] | null;
}
