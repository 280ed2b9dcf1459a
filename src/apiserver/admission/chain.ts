import { AdmissionChain } from './admission.js';
import { priorityAdmission } from './priority.js';

/** The admission plugins every API server runs, in order. */
export function defaultAdmission(): AdmissionChain {
  return new AdmissionChain([priorityAdmission]);
}
