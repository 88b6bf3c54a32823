/** The fuzzed parsers, in report order (their definitions: ./targets.ts). */
export const TARGET_NAMES = ["safetensors", "safetensors_file", "nifti", "nifti_gz", "dicom", "dicom_series", "rtstruct"];
