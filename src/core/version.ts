// herd's version, kept in step with package.json by the build.
export const VERSION = '1.0.0'
