import { AdmissionChain } from './admission.js';
import { priorityAdmission } from './priority.js';
import { serviceAccountAdmission } from './service-account.js';

/** The admission plugins every API server runs, in order. */
export function defaultAdmission(): AdmissionChain {
  return new AdmissionChain([serviceAccountAdmission, priorityAdmission]);
}
