/**
 * The notebook agent's approval cards, and the stdin requests they answer.
 *
 * The agent runs inside a cell, where the kernel does not hear comm messages,
 * so approval always goes through `input()`: the kernel sends `approve`, then
 * asks on stdin with the same prompt. A card binds to the first unanswered
 * stdin request with that prompt from the same cell's run (whichever arrives
 * first), and a click answers it with `kernel.sendInputReply` and the
 * request's header as parent; a click before the request is kept until it
 * comes. Typing into JupyterLab's own input box answers it just as well.
 *
 * Once a card answered, JupyterLab's input box for that request is removed
 * (and the answer recorded in the output, as a typed one is): ipykernel takes
 * any reply arriving after its next prompt as the answer to that prompt, so a
 * box left behind could approve a later step. A request is answered at most
 * once, password prompts never. Everything shown is set with textContent.
 */
import { Cell, CodeCell } from '@jupyterlab/cells';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { PanelLayout, Widget } from '@lumino/widgets';

import { ANSWERS, Answer, IApproveMessage } from './protocol';

type OutputArea = CodeCell['outputArea'];

/** Each button: its text, its accessible name (holds the text), its tooltip, its style. */
const BUTTONS: {
  answer: Answer;
  text: string;
  label: (step: number) => string;
  title: string;
  mod: string;
}[] = [
  {
    answer: 'run',
    text: 'Run',
    label: step => `Run step ${step}`,
    title: 'Run this code in the kernel',
    mod: 'jp-mod-accept'
  },
  {
    answer: 'skip',
    text: 'Skip',
    label: step => `Skip step ${step}`,
    title: 'Do not run it; the agent is told it was declined',
    mod: 'jp-mod-reject'
  },
  {
    answer: 'all',
    text: 'Run all for this task',
    label: step => `Run all for this task, from step ${step}`,
    title: 'Run this step and every later step of this task without asking',
    mod: ''
  },
  {
    answer: 'stop',
    text: 'Stop',
    label: step => `Stop the agent at step ${step}`,
    title: 'Stop the agent: nothing more runs',
    mod: 'jp-mod-warn'
  }
];

const SETTLED: Record<Answer, string> = {
  run: 'Run: the step runs.',
  skip: 'Skipped.',
  all: 'Run all: this step and the later ones of this task run without asking.',
  stop: 'Stop: the agent stops.'
};

/** Typed replies the agent takes as an answer (anything else, it asks again). */
const DECISIVE = new Set(['y', 'yes', 'n', 'no', 'a', 'all', 'q', 'quit']);

/** A stdin request from the kernel, while it may still matter. */
interface IRequest {
  header: KernelMessage.IHeader;
  prompt: string;
  /** The execute request it belongs to (the running cell's). */
  parent: string;
  password: boolean;
  answered: boolean;
  card: ApprovalCard | null;
  /** The card's reply (to record in the output when JupyterLab's box is removed). */
  reply: string | null;
  /** JupyterLab's input box for it and the output area showing it. */
  box: Widget | null;
  area: OutputArea | null;
}

/** The card under the agent's cell: the step's code and four buttons. */
export class ApprovalCard extends Widget {
  readonly approvalId: string;
  readonly prompt: string;
  /** The execute request whose run sent `approve` (null when unknown). */
  readonly run: string | null;
  request: IRequest | null = null;
  queued: Answer | null = null;

  constructor(
    msg: IApproveMessage,
    run: string | null,
    onAnswer: (answer: Answer) => void,
    languages: IEditorLanguageRegistry | null = null
  ) {
    super();
    this.approvalId = msg.id;
    this.prompt = msg.prompt;
    this.run = run;
    this.addClass('glm-bridge-approval');
    const titleId = `glm-approval-${msg.id}`;
    this.node.setAttribute('role', 'group');
    this.node.setAttribute('aria-labelledby', titleId);
    const title = document.createElement('div');
    title.className = 'glm-bridge-approval-title';
    title.id = titleId;
    title.textContent = `Step ${msg.step}: run this code?`;
    const pre = document.createElement('pre');
    pre.className = 'glm-bridge-approval-code';
    pre.tabIndex = 0; // long code scrolls: reachable by keyboard
    pre.setAttribute('aria-label', `Code of step ${msg.step}`);
    const code = document.createElement('code');
    code.textContent = msg.code;
    pre.appendChild(code);
    if (languages) {
      // CodeMirror's highlighter builds text nodes and spans only (never HTML from the text).
      const highlighted = document.createElement('code');
      void languages
        .highlight(msg.code, languages.findBest('python'), highlighted)
        .then(() => {
          if (highlighted.textContent === msg.code) {
            code.replaceWith(highlighted);
          }
        })
        .catch(() => undefined);
    }
    const bar = document.createElement('div');
    bar.className = 'glm-bridge-approval-bar';
    for (const spec of BUTTONS) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = `jp-mod-styled ${spec.mod} glm-bridge-approval-${spec.answer}`.trim();
      button.textContent = spec.text;
      button.title = spec.title;
      button.setAttribute('aria-label', spec.label(msg.step));
      button.addEventListener('click', () => onAnswer(spec.answer));
      bar.appendChild(button);
    }
    const status = document.createElement('div');
    status.className = 'glm-bridge-approval-status';
    status.setAttribute('role', 'status');
    this.node.append(title, pre, bar, status);
  }

  get settled(): boolean {
    return this.hasClass('glm-mod-settled');
  }

  /** Say where things are (waiting for the prompt, answered) in the live status line. */
  say(text: string): void {
    const status = this.node.querySelector('.glm-bridge-approval-status');
    if (status) {
      status.textContent = text;
    }
  }

  /** No more clicks: the request was answered (here or in the input box). */
  settle(text: string): void {
    this.addClass('glm-mod-settled');
    this.node.querySelectorAll('button').forEach(b => (b.disabled = true));
    this.say(text);
  }

  /** Put the card under `cell`'s outputs. */
  showUnder(cell: Cell): void {
    const layout = cell.layout as PanelLayout;
    const area = (cell as CodeCell).outputArea?.node ?? null;
    const at = layout.widgets.findIndex(w => area !== null && w.node.contains(area));
    layout.insertWidget(at < 0 ? layout.widgets.length : at + 1, this);
  }
}

/** The approval cards of one notebook's kernel connection, and its stdin requests. */
export class Approvals {
  private _requests = new Map<string, IRequest>();
  private _cards = new Map<string, ApprovalCard>();
  private _areas: OutputArea[] = [];

  constructor(
    private _kernel: Kernel.IKernelConnection,
    /** The code cell whose run is the execute request `parent`, if shown. */
    private _cellOfRun: (parent: string) => CodeCell | null,
    /** CodeMirror's languages, to highlight the card's code (optional). */
    private _languages: IEditorLanguageRegistry | null = null
  ) {
    _kernel.anyMessage.connect(this._onMessage, this);
  }

  /** Show a card for `msg` under `cell`; `parent` is the execute request that sent it. */
  show(cell: Cell, msg: IApproveMessage, parent: string | null): void {
    this._cards.get(msg.id)?.dispose();
    const card = new ApprovalCard(
      msg,
      parent,
      answer => this._click(card, answer),
      this._languages
    );
    this._cards.set(msg.id, card);
    card.showUnder(cell);
    this._bind();
  }

  /** `approve_done`: the approval was answered; its card goes. */
  done(approvalId: string): void {
    const card = this._cards.get(approvalId);
    this._cards.delete(approvalId);
    card?.dispose();
  }

  dispose(): void {
    this._kernel.anyMessage.disconnect(this._onMessage, this);
    for (const area of this._areas) {
      area.inputRequested.disconnect(this._onInputBox, this);
    }
    this._cards.forEach(card => card.dispose());
    this._cards.clear();
    this._requests.clear();
  }

  private _click(card: ApprovalCard, answer: Answer): void {
    if (card.settled || card.isDisposed) {
      return;
    }
    const request = card.request;
    if (request === null) {
      card.queued = answer; // the kernel's prompt is not here yet: answer it when it comes
      card.say(`${SETTLED[answer]} (waiting for the kernel's prompt)`);
      return;
    }
    this._reply(request, answer);
  }

  private _reply(request: IRequest, answer: Answer): void {
    if (request.answered) {
      return;
    }
    request.answered = true;
    request.reply = ANSWERS[answer];
    const header = request.header as KernelMessage.IHeader<'input_request'>;
    this._kernel.sendInputReply({ status: 'ok', value: request.reply }, header);
    request.card?.settle(SETTLED[answer]);
    this._removeBox(request);
  }

  /** Pair waiting cards with unanswered requests of the same prompt and run. */
  private _bind(): void {
    for (const card of this._cards.values()) {
      if (card.request !== null || card.settled) {
        continue;
      }
      for (const request of this._requests.values()) {
        const sameRun = card.run === null || card.run === request.parent;
        if (
          request.card === null &&
          !request.answered &&
          !request.password &&
          sameRun &&
          request.prompt === card.prompt
        ) {
          request.card = card;
          card.request = request;
          if (card.queued !== null) {
            this._reply(request, card.queued);
          }
          break;
        }
      }
    }
  }

  private _onMessage(_: unknown, args: Kernel.IAnyMessageArgs): void {
    const msg = args.msg;
    const type = msg.header.msg_type;
    const parent = (msg.parent_header as Partial<KernelMessage.IHeader>)?.msg_id ?? '';
    if (args.direction === 'recv' && type === 'input_request') {
      const content = msg.content as KernelMessage.IInputRequestMsg['content'];
      this._requests.set(msg.header.msg_id, {
        header: msg.header,
        prompt: String(content.prompt ?? ''),
        parent,
        password: !!content.password,
        answered: false,
        card: null,
        reply: null,
        box: null,
        area: null
      });
      this._watchBoxes(parent);
      this._bind();
    } else if (args.direction === 'send' && type === 'input_reply') {
      // Ours, or typed into JupyterLab's box: either way the request is answered.
      const request = this._requests.get(parent);
      if (request && !request.answered) {
        request.answered = true;
        const card = request.card;
        const typed = String((msg.content as any).value ?? '').trim().toLowerCase();
        if (card && DECISIVE.has(typed)) {
          card.settle('Answered in the input box.');
        } else if (card) {
          // Not an answer the agent takes: it asks again, and the card answers that.
          request.card = null;
          card.request = null;
          card.say(`"${typed.slice(0, 20)}" is not y, n, a or q: the agent asks again.`);
        }
      }
    } else if (args.direction === 'recv' && type === 'status') {
      const state = (msg.content as KernelMessage.IStatusMsg['content']).execution_state;
      if (state === 'idle') {
        this._runEnded(parent);
      }
    }
  }

  /** A run ended (finished, failed, interrupted): its requests and cards are over. */
  private _runEnded(parent: string): void {
    for (const [id, request] of this._requests) {
      if (request.parent === parent) {
        this._requests.delete(id);
      }
    }
    for (const [id, card] of this._cards) {
      if (card.run === parent) {
        this._cards.delete(id);
        card.dispose();
      }
    }
  }

  /** Catch JupyterLab's input box for requests of this run (made after this message). */
  private _watchBoxes(parent: string): void {
    const area = this._cellOfRun(parent)?.outputArea;
    if (area && !this._areas.includes(area)) {
      this._areas.push(area);
      area.inputRequested.connect(this._onInputBox, this);
      area.disposed.connect(() => {
        this._areas = this._areas.filter(a => a !== area);
      });
    }
  }

  private _onInputBox(area: OutputArea, box: unknown): void {
    const parent = area.future?.msg.header.msg_id;
    let latest: IRequest | null = null;
    for (const request of this._requests.values()) {
      if (request.parent === parent) {
        latest = request; // stdin is one request at a time: the newest is this box's
      }
    }
    if (latest === null) {
      return;
    }
    // JupyterLab 4.1+ passes the box (inside its output item); 4.0 has just added the item.
    const item = (box as Widget | undefined)?.parent ?? area.widgets[area.widgets.length - 1];
    latest.box = item ?? null;
    latest.area = area;
    if (latest.reply !== null) {
      // A click answered before the box was made. JupyterLab 4.1+ tells us before it adds
      // the box to the output area: remove it once that is done, or it would come back.
      const request = latest;
      void Promise.resolve().then(() => this._removeBox(request));
    }
  }

  /** Remove JupyterLab's box for a request the card answered; record the answer as it would. */
  private _removeBox(request: IRequest): void {
    const box = request.box;
    if (!box || box.isDisposed || request.reply === null) {
      return;
    }
    if (!box.hasClass('jp-OutputArea-stdin-item')) {
      return; // not the input box: leave it
    }
    request.area?.model.add({
      output_type: 'stream',
      name: 'stdin',
      text: `${request.prompt} ${request.reply}\n`
    });
    box.dispose();
    request.box = null;
  }
}
