import type { PageReference } from './page-reference.js';

/** One line, with words next to the colour: the page hash against the signed console releases. */
export function PageReferenceLine({ reference }: { reference: PageReference }) {
  switch (reference.state) {
    case 'match':
      return (
        <span class="ok" data-testid="page-reference" data-state="match">
          ✓ matches the signed reference values (console release {reference.release})
        </span>
      );
    case 'mismatch':
      return (
        <span class="error" role="alert" data-testid="page-reference" data-state="mismatch">
          ✗ does NOT match the signed reference values
          {reference.released.length === 0
            ? ''
            : ` (released: ${reference.released.map((h) => `${h.slice(0, 12)}…`).join(', ')})`}{' '}
          — this page is not a released console
        </span>
      );
    case 'unlisted':
      return (
        <span class="error" role="alert" data-testid="page-reference" data-state="unlisted">
          ✗ the signed reference values name no console release to compare with
        </span>
      );
    case 'pending':
      return (
        <span class="muted" data-testid="page-reference" data-state="pending">
          (reference values: {reference.reason})
        </span>
      );
  }
}
