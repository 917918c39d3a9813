# The lab's pooler host: Debian bookworm's pgbouncer (1.18.0), in front of the VIP.
# Built by lab/image.ts (ensurePoolerImage) from the lab's `apt` image (lab/image/Dockerfile:
# Debian's sources and lists, policy-rc.d so no service starts at install). Its own context, so
# that the host images' tags (a hash of lab/image/) do not change with it.
ARG APT_IMAGE
FROM ${APT_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get install -y -q --no-install-recommends pgbouncer tini \
 && apt-get clean \
 && pgbouncer --version \
 && chown -R postgres:postgres /etc/pgbouncer
COPY pooler-entrypoint.sh /usr/local/sbin/pg-switchover-pooler
RUN chmod 755 /usr/local/sbin/pg-switchover-pooler
USER postgres
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/sbin/pg-switchover-pooler"]
