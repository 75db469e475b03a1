/**
 * Outputs a step cell carries (the `insert` op's per-cell `outputs`): checked
 * and rebuilt from their own nbformat fields, nothing else kept.
 *
 * They are data from the kernel (a step's real output: untrusted). The new
 * cell holds them untrusted, so JupyterLab's renderers sanitise HTML and run
 * no script; this check only makes sure the model gets well-formed nbformat.
 * The kernel side applies the same rule (glm_magic/bridge_cells.py).
 */

/** At most this many outputs per inserted cell. */
export const MAX_OUTPUTS = 100;
/** One output's JSON may be at most this long. */
export const MAX_OUTPUT_CHARS = 1000000;

export type IOutput = Record<string, unknown> & { output_type: string };

/** nbformat's multi-line string: a string, or a list of strings to join. */
function text(value: unknown): string | null {
  if (typeof value === 'string') {
    return value;
  }
  if (Array.isArray(value) && value.every(part => typeof part === 'string')) {
    return value.join('');
  }
  return null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bundle(data: unknown): Record<string, unknown> | string {
  if (!isObject(data)) {
    return "an output's data must be an object of MIME types";
  }
  const out: Record<string, unknown> = {};
  for (const [mime, value] of Object.entries(data)) {
    if (mime === '' || mime.length > 200) {
      return 'a MIME type must be a short string';
    }
    if (mime === 'application/json' || mime.endsWith('+json')) {
      out[mime] = value; // JSON data, never run
      continue;
    }
    const t = text(value);
    if (t === null) {
      return `${JSON.stringify(mime).slice(0, 60)} must be text`;
    }
    out[mime] = t;
  }
  return out;
}

function output(raw: unknown): IOutput | string {
  if (!isObject(raw)) {
    return 'an output must be an object';
  }
  const kind = raw.output_type;
  if (kind === 'stream') {
    const t = text(raw.text);
    if ((raw.name !== 'stdout' && raw.name !== 'stderr') || t === null) {
      return 'a stream output needs name stdout or stderr and text';
    }
    return { output_type: 'stream', name: raw.name, text: t };
  }
  if (kind === 'display_data' || kind === 'execute_result') {
    const data = bundle(raw.data);
    if (typeof data === 'string') {
      return data;
    }
    const metadata = raw.metadata ?? {};
    if (!isObject(metadata)) {
      return "an output's metadata must be an object";
    }
    if (kind === 'display_data') {
      return { output_type: kind, data, metadata };
    }
    const count = raw.execution_count ?? null;
    if (count !== null && !(Number.isInteger(count) && (count as number) >= 0)) {
      return "an execute_result's execution_count must be a count or null";
    }
    return { output_type: kind, data, metadata, execution_count: count };
  }
  if (kind === 'error') {
    const trace = raw.traceback ?? [];
    if (typeof raw.ename !== 'string' || typeof raw.evalue !== 'string') {
      return 'an error output needs ename and evalue strings';
    }
    if (!Array.isArray(trace) || !trace.every(line => typeof line === 'string')) {
      return "an error output's traceback must be a list of strings";
    }
    return { output_type: 'error', ename: raw.ename, evalue: raw.evalue, traceback: trace };
  }
  return `unknown output type ${JSON.stringify(kind)}`.slice(0, 80);
}

/** The outputs rebuilt from their known fields, or a one-line reason they are refused. */
export function checkOutputs(raw: unknown): IOutput[] | string {
  if (!Array.isArray(raw)) {
    return 'outputs must be a list';
  }
  if (raw.length > MAX_OUTPUTS) {
    return `at most ${MAX_OUTPUTS} outputs per cell`;
  }
  const out: IOutput[] = [];
  for (const item of raw) {
    const checked = output(item);
    if (typeof checked === 'string') {
      return checked;
    }
    if (JSON.stringify(checked).length > MAX_OUTPUT_CHARS) {
      return `an output is over ${MAX_OUTPUT_CHARS} characters`;
    }
    out.push(checked);
  }
  return out;
}
