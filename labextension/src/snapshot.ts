/**
 * The live notebook as the kernel sees it in a `snapshot`: ids, types,
 * sources (unsaved edits too), execution counts and outputs (big ones cut).
 */
import { NotebookPanel } from '@jupyterlab/notebook';

/** Outputs larger than this (JSON characters) reach the kernel as a short note. */
export const MAX_OUTPUT = 20000;

function cellOutputs(model: any): any[] {
  if (model.type !== 'code') {
    return [];
  }
  const outputs: any[] = model.outputs.toJSON();
  return outputs.map(output => {
    const size = JSON.stringify(output).length;
    if (size <= MAX_OUTPUT) {
      return output;
    }
    return {
      output_type: 'stream',
      name: 'stdout',
      text: `[an output of ${size} characters was left out]`
    };
  });
}

/** The live notebook: ids, types, sources (unsaved edits too), outputs, counts. */
export function snapshot(
  panel: NotebookPanel,
  runningCell: string | null,
  id: string | null
): Record<string, any> {
  const notebook = panel.content;
  const cells = notebook.widgets.map(cell => {
    const model: any = cell.model;
    return {
      id: model.id,
      cell_type: model.type,
      source: model.sharedModel.getSource(),
      execution_count: model.type === 'code' ? model.executionCount ?? null : null,
      outputs: cellOutputs(model)
    };
  });
  return {
    op: 'snapshot',
    id,
    path: panel.context.path,
    cells,
    active_cell: notebook.activeCell?.model.id ?? null,
    running_cell: runningCell
  };
}
