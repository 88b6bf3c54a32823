// Virtual module produced by scripts/build.mjs: every kernels/**/*.wgsl by name.
declare module "pulmo:kernels" {
  export const KERNELS: Record<string, string>;
}

// wgsl_reflect's package "main" is CommonJS under "type": "module"; we import its ESM build,
// whose types are the package's own.
declare module "wgsl_reflect/wgsl_reflect.module.js" {
  export * from "wgsl_reflect";
}
