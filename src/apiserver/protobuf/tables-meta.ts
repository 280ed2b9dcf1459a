import type { MessageTable } from './schema.js';

/** Messages of k8s.io/apimachinery/pkg/apis/meta/v1 that objects embed. */
export const META: MessageTable = {
  ObjectMeta: {
    1: 'name',
    2: 'generateName',
    3: 'namespace',
    4: 'selfLink',
    5: 'uid',
    6: 'resourceVersion',
    7: 'generation:int64',
    8: 'creationTimestamp:time',
    9: 'deletionTimestamp:time',
    10: 'deletionGracePeriodSeconds!:int64',
    11: 'labels:map<string>',
    12: 'annotations:map<string>',
    13: 'ownerReferences:[]OwnerReference',
    14: 'finalizers:[]string',
    17: 'managedFields:[]ManagedFieldsEntry',
  },
  OwnerReference: {
    1: 'kind!',
    3: 'name!',
    4: 'uid!',
    5: 'apiVersion!',
    6: 'controller!:bool',
    7: 'blockOwnerDeletion!:bool',
  },
  ManagedFieldsEntry: {
    1: 'manager',
    2: 'operation',
    3: 'apiVersion',
    4: 'time:time',
    6: 'fieldsType',
    7: 'fieldsV1:fieldsV1',
    8: 'subresource',
  },
  LabelSelector: {
    1: 'matchLabels:map<string>',
    2: 'matchExpressions:[]LabelSelectorRequirement',
  },
  LabelSelectorRequirement: { 1: 'key!', 2: 'operator!', 3: 'values:[]string' },
  // The body of a DELETE from typed clients (kubectl drain deletes pods with one).
  DeleteOptions: {
    1: 'gracePeriodSeconds!:int64',
    2: 'preconditions:Preconditions',
    3: 'orphanDependents!:bool',
    4: 'propagationPolicy!',
    5: 'dryRun:[]string',
    6: 'ignoreStoreReadErrorWithClusterBreakingPotential!:bool',
  },
  Preconditions: { 1: 'uid!', 2: 'resourceVersion!' },
  Condition: {
    1: 'type!',
    2: 'status!',
    3: 'observedGeneration:int64',
    4: 'lastTransitionTime:time',
    5: 'reason!',
    6: 'message!',
  },
};
