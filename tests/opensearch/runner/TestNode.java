import org.codelibs.opensearch.runner.OpenSearchRunner;

/**
 * The j1filter test node: OpenSearchRunner's own main, with the ingest role (the runner's
 * default roles are cluster_manager and data only, and the assets need an ingest pipeline),
 * loopback only, no disk watermarks, and a start-up failure printed instead of swallowed.
 * Arguments are the runner's (-basePath, -numOfNode, -baseHttpPort, ...).
 */
public final class TestNode {
    private TestNode() {
    }

    public static void main(final String[] args) throws Exception {
        final OpenSearchRunner runner = new OpenSearchRunner();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (final Exception e) {
                e.printStackTrace();
            }
        }));
        // The test process holds our stdin open: when it ends, however it ends, so does the node.
        final Thread orphanWatch = new Thread(() -> {
            try {
                while (System.in.read() != -1) {
                    // nothing is ever written; only the end of the stream matters
                }
            } catch (final java.io.IOException e) {
                // a broken pipe is an end too
            }
            System.exit(0);
        });
        orphanWatch.setDaemon(true);
        orphanWatch.start();
        runner.onBuild((index, settings) -> {
            settings.putList("node.roles", "cluster_manager", "data", "ingest");
            settings.put("network.host", "127.0.0.1");
            settings.put("discovery.type", "single-node");
            settings.put("cluster.routing.allocation.disk.threshold_enabled", false);
        });
        try {
            runner.build(args);
        } catch (final Throwable e) {
            System.out.println("j1filter test node: start-up failed");
            e.printStackTrace(System.out);
            System.exit(1);
        }
        while (!runner.isClosed()) {
            Thread.sleep(1000);
        }
    }
}
