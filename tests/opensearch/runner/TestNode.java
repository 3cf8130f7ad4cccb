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
        // When the test process that started us ends, however it ends, so does the node.
        final ProcessHandle testProcess = ProcessHandle.current().parent().orElseThrow();
        final Thread orphanWatch = new Thread(() -> {
            while (testProcess.isAlive()) {
                try {
                    Thread.sleep(1000);
                } catch (final InterruptedException e) {
                    return;
                }
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
