/**
 * How the old primary, rebuilt as a standby, connects to the new primary: the keywords of the
 * pair's own `primary_conninfo` (sslmode, passfile, …) besides the ones the rebuild sets for the
 * new upstream, and the physical slot it streams through there (null: the pair uses none).
 * Resolved in pre-flight and journaled with the run's input, so that `--resume` rebuilds alike.
 */
export interface StandbyLink {
  keywords: Record<string, string>;
  slot: {
    /** Made on the new primary for the old one. */
    name: string;
    /** The standby's slot on the old primary: nobody streams through it once that standby is the primary. */
    replaces: string;
  } | null;
}
