-- A destination's circuit breaker state, as JSON (store.CircuitState):
-- empty while closed. It is runtime state shared by every instance, moved
-- only by compare-and-set (Store.DestinationSetCircuit), so one instance
-- opens the circuit and one sends each half-open probe.
ALTER TABLE destinations ADD COLUMN circuit TEXT NOT NULL DEFAULT '';
