// Every failure reading or writing DICOM surfaces as a DicomError naming the problem.
import { PulmoError } from "../../runtime/errors.ts";

export class DicomError extends PulmoError {
  constructor(message: string) {
    super(`dicom: ${message}`);
    this.name = "DicomError";
  }
}

export const fail = (message: string): never => {
  throw new DicomError(message);
};

/** Re-throws a DicomError with context (e.g. which file) appended; other errors pass unchanged. */
export function rethrowWith(e: unknown, context: string): never {
  if (e instanceof DicomError) throw new DicomError(`${e.message.replace(/^dicom: /, "")} ${context}`);
  throw e;
}
