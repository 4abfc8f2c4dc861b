// PLACEHOLDER: being written by the lead; replaced soon. Do not edit.
/** A session. */
export class Session<P = unknown> {
  /** Placeholder. */
  declare readonly _pkg?: P;
}
