import { useEffect, useRef, useState } from 'preact/hooks';
import type { TresorClient } from '@tresor/sdk';
import { describeError } from '../format.js';
import type { TrustView } from '../trust/trust-view.js';
import { listModels, streamChat, type ChatMessage, type ModelInfo } from './gateway-session.js';
import { streamEvents } from './sse-deltas.js';

const KEY_STORAGE = 'tresor.console.apiKey';

function storedKey(): string {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

interface Turn extends ChatMessage {
  readonly id: number;
  readonly state?: 'streaming' | 'stopped' | 'error';
}

export function ChatPanel({ client, view }: { client: TresorClient | null; view: TrustView | null }) {
  // The API key lives in this component's memory; sessionStorage only when the user asks (this tab).
  const [apiKey, setApiKey] = useState(storedKey);
  const [remember, setRemember] = useState(() => storedKey() !== '');
  const [models, setModels] = useState<ModelInfo[]>([]);
  const [model, setModel] = useState('');
  const [maxTokens, setMaxTokens] = useState(128);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [prompt, setPrompt] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const abort = useRef<AbortController | null>(null);
  const nextId = useRef(1);

  useEffect(() => {
    try {
      if (remember && apiKey !== '') sessionStorage.setItem(KEY_STORAGE, apiKey);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // Storage unavailable: the key stays in memory only.
    }
  }, [remember, apiKey]);

  const loadModels = async (): Promise<void> => {
    if (client === null || apiKey === '') return;
    setError('');
    try {
      const found = await listModels(client, apiKey);
      setModels(found);
      if (!found.some((m) => m.id === model)) setModel(found[0]?.id ?? '');
    } catch (err) {
      setError(describeError(err));
    }
  };
  useEffect(() => {
    void loadModels();
    // Reload when the client or key changes, not on every keystroke of the model.
  }, [client, apiKey]);

  const refused = client === null;
  const send = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (client === null || prompt.trim() === '' || apiKey === '' || model === '') return;
    const history: ChatMessage[] = [
      ...turns.filter((t) => t.state !== 'error').map(({ role, content }) => ({ role, content })),
      { role: 'user', content: prompt },
    ];
    const user: Turn = { id: nextId.current++, role: 'user', content: prompt };
    const answerId = nextId.current++;
    setTurns((t) => [...t, user, { id: answerId, role: 'assistant', content: '', state: 'streaming' }]);
    setPrompt('');
    setError('');
    setBusy(true);
    const controller = new AbortController();
    abort.current = controller;
    const update = (f: (t: Turn) => Turn): void => {
      setTurns((all) => all.map((t) => (t.id === answerId ? f(t) : t)));
    };
    try {
      const body = await streamChat(client, apiKey, model, history, maxTokens, controller.signal);
      for await (const e of streamEvents(body)) {
        if (e.kind === 'delta') update((t) => ({ ...t, content: t.content + e.text }));
        else if (e.kind === 'error') throw new Error(e.message);
      }
      update(({ state: _s, ...t }) => t);
    } catch (err) {
      const stopped = controller.signal.aborted;
      update((t) => ({ ...t, state: stopped ? 'stopped' : 'error' }));
      if (!stopped) setError(describeError(err));
    } finally {
      abort.current = null;
      setBusy(false);
    }
  };

  return (
    <div class="chat">
      {refused ? (
        <div class="banner banner-refused" role="alert" data-testid="chat-refused">
          <strong>Sending is disabled.</strong>{' '}
          {view === null
            ? 'The gateway has not been verified yet.'
            : view.ok
              ? 'The encrypted channel is not open.'
              : `The gateway failed verification: ${view.failed
                  .map((f) => `${f.group} — ${f.label} (${f.check})`)
                  .join('; ')}. Nothing is sent to an unverified gateway.`}
        </div>
      ) : (
        <p class="chat-note">
          Messages are encrypted in this page (OHTTP/HPKE) to the attested gateway key; the network sees
          ciphertext only.
        </p>
      )}
      <form
        class="chat-settings"
        onSubmit={(e) => {
          e.preventDefault();
        }}
      >
        <label>
          API key
          <input
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={apiKey}
            onInput={(e) => {
              setApiKey(e.currentTarget.value.trim());
            }}
            placeholder="tr_…"
            data-testid="api-key"
          />
        </label>
        <label class="inline">
          <input
            type="checkbox"
            checked={remember}
            onChange={(e) => {
              setRemember(e.currentTarget.checked);
            }}
          />
          Remember in this tab
        </label>
        <label>
          Model
          <select
            value={model}
            onChange={(e) => {
              setModel(e.currentTarget.value);
            }}
            disabled={models.length === 0}
            data-testid="model"
          >
            {models.length === 0 ? <option value="">(enter an API key)</option> : null}
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.id}
              </option>
            ))}
          </select>
        </label>
        <label>
          Max tokens
          <input
            type="number"
            min={1}
            max={4096}
            value={maxTokens}
            onInput={(e) => {
              setMaxTokens(Math.max(1, Math.min(4096, Number(e.currentTarget.value) || 1)));
            }}
            data-testid="max-tokens"
          />
        </label>
      </form>
      <ol class="turns" aria-live="polite" aria-label="Conversation" data-testid="turns">
        {turns.map((t) => (
          <li key={t.id} class={`turn turn-${t.role}`} data-role={t.role} data-state={t.state ?? 'done'}>
            <span class="turn-role">{t.role === 'user' ? 'You' : model || 'Model'}</span>
            <p class="turn-text">{t.content}</p>
            {t.state === 'stopped' ? <span class="turn-state">stopped</span> : null}
            {t.state === 'streaming' ? <span class="turn-state">…</span> : null}
          </li>
        ))}
      </ol>
      {error === '' ? null : (
        <p class="error" role="alert" data-testid="chat-error">
          {error}
        </p>
      )}
      <form class="composer" onSubmit={(e) => void send(e)}>
        <label for="prompt" class="visually-hidden">
          Message
        </label>
        <textarea
          id="prompt"
          rows={3}
          value={prompt}
          onInput={(e) => {
            setPrompt(e.currentTarget.value);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void send(e);
          }}
          placeholder={refused ? 'Verification failed: sending is disabled' : 'Message (Ctrl+Enter sends)'}
          disabled={refused}
          data-testid="prompt"
        />
        <div class="composer-buttons">
          <button
            type="submit"
            disabled={refused || busy || apiKey === '' || model === '' || prompt.trim() === ''}
            data-testid="send"
          >
            Send
          </button>
          <button type="button" onClick={() => abort.current?.abort()} disabled={!busy} data-testid="stop">
            Stop
          </button>
        </div>
      </form>
    </div>
  );
}
